# Made by `trainyard init`: a stand-in for your data preparation. It writes a small data set
# (y = 2x + 1 with noise) to /outputs/dataset, where the train step finds it at /inputs/dataset.
import csv
import json
import random

random.seed(1)
rows = [(x / 10, 2 * x / 10 + 1 + random.gauss(0, 0.1)) for x in range(100)]
with open("/outputs/dataset", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["x", "y"])
    writer.writerows(rows)
# A stdout line that is one JSON object is a metrics sample, shown in the run's report.
print(json.dumps({"rows": len(rows)}))
