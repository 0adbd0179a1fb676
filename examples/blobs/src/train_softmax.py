"""Multinomial logistic regression trained by full-batch gradient descent."""
import json
import math

from common import metric, param, write_json

train = json.load(open("/inputs/dataset/train.json"))
epochs, lr = param("epochs", int), param("lr", float)
classes = sorted({y for _, y in train})
n = len(train[0][0])
w = [[0.0] * (n + 1) for _ in classes]


def probs(x):
    z = [sum(wc[i] * x[i] for i in range(n)) + wc[n] for wc in w]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


for epoch in range(1, epochs + 1):
    grad = [[0.0] * (n + 1) for _ in classes]
    loss = correct = 0
    for x, y in train:
        p = probs(x)
        t = classes.index(y)
        loss -= math.log(max(p[t], 1e-12))
        correct += max(range(len(p)), key=p.__getitem__) == t
        for c in range(len(classes)):
            d = p[c] - (1.0 if c == t else 0.0)
            for i in range(n):
                grad[c][i] += d * x[i]
            grad[c][n] += d
    for c in range(len(classes)):
        for i in range(n + 1):
            w[c][i] -= lr * grad[c][i] / len(train)
    if epoch == 1 or epoch % max(1, epochs // 20) == 0 or epoch == epochs:
        metric(epoch=epoch, loss=round(loss / len(train), 5), accuracy=round(correct / len(train), 4))

write_json("/outputs/model", {"kind": "softmax", "classes": classes, "weights": [[round(v, 6) for v in wc] for wc in w]})
