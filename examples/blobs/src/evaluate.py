"""Score both models on the held-out set and keep the better one."""
import json
import math
import shutil

from common import metric, write_json

test = json.load(open("/inputs/dataset/test.json"))


def predict_softmax(m, x):
    n = len(x)
    z = [sum(wc[i] * x[i] for i in range(n)) + wc[n] for wc in m["weights"]]
    return m["classes"][max(range(len(z)), key=z.__getitem__)]


def predict_knn(m, x):
    near = sorted(m["points"], key=lambda p: math.dist(p[0], x))[: m["k"]]
    votes = {}
    for _, y in near:
        votes[y] = votes.get(y, 0) + 1
    return max(sorted(votes), key=votes.get)


scores = {}
for name, predict in (("softmax", predict_softmax), ("knn", predict_knn)):
    model = json.load(open(f"/inputs/{name}"))
    scores[name] = round(sum(predict(model, x) == y for x, y in test) / len(test), 4)

best = max(sorted(scores), key=scores.get)
shutil.copyfile(f"/inputs/{best}", "/outputs/best_model")
write_json("/outputs/scores", {"accuracy": scores, "best": best, "test_rows": len(test)})
metric(softmax_accuracy=scores["softmax"], knn_accuracy=scores["knn"], best=best)
print(f"best model: {best} ({scores[best]:.1%} on {len(test)} test rows)")
