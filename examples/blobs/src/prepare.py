"""Split the raw measurements into train and test sets and standardise the features."""
import os
import random

from common import FEATURES, param, read_rows, write_json

rows = read_rows("/inputs/raw")
random.Random(param("seed", int)).shuffle(rows)
cut = int(len(rows) * 0.8)
train, test = rows[:cut], rows[cut:]
n = len(FEATURES)
mean = [sum(x[i] for x, _ in train) / len(train) for i in range(n)]
std = [(sum((x[i] - mean[i]) ** 2 for x, _ in train) / len(train)) ** 0.5 for i in range(n)]


def norm(x):
    return [round((x[i] - mean[i]) / std[i], 6) for i in range(n)]


os.makedirs("/outputs/dataset")
write_json("/outputs/dataset/train.json", [[norm(x), y] for x, y in train])
write_json("/outputs/dataset/test.json", [[norm(x), y] for x, y in test])
write_json("/outputs/dataset/stats.json", {"mean": [round(m, 6) for m in mean], "std": [round(s, 6) for s in std]})
print(f"prepared {len(train)} training and {len(test)} test rows")
