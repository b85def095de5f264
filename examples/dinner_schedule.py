"""The dinner schedule: a tiny RNN learns a rule it can only follow by remembering.

A cook has three dishes, apple pie → burger → chicken → apple pie ... On a sunny day he cooks
the next dish of the cycle; on a rainy day he serves yesterday's leftovers, the same dish again.
The model sees only the weather (one-hot: sunny, rainy), plus, on the first day, what was
served the day before; it must say what is for dinner every day. Today's dish depends on every
day since the start, so the hidden state has to keep track of it: a three-state automaton
driven by the weather, learned by an Elman network (fig. 10.3) with 8 hidden units.

The script draws the circuit and its unrolled graph (``dinner_circuit.png``,
``dinner_unrolled.png``) and prints a week of predictions.

Quality (full run, seed 0): 100% of the dishes right on 500 held-out sequences of 30 days
(longer than the 10-day sequences it was trained on); the last full run's figures are in
examples/README.md.

    python examples/dinner_schedule.py            # full run
    python examples/dinner_schedule.py --quick    # the tests' version
"""
import argparse
from pathlib import Path

import numpy as np

import unroll as ur

DISHES = ["apple pie", "burger", "chicken"]
WEATHER = ["sunny", "rainy"]


def days(n: int, T: int, rng) -> tuple:
    """x (T, n, 5): weather one-hot, and on day 1 yesterday's dish; y (T, n): today's dish."""
    weather = rng.integers(0, 2, size=(T, n))
    dish = np.zeros((T, n), dtype=int)
    yesterday = rng.integers(0, 3, size=n)
    prev = yesterday
    for t in range(T):
        prev = np.where(weather[t] == 0, (prev + 1) % 3, prev)
        dish[t] = prev
    x = np.zeros((T, n, 5))
    x[np.arange(T)[:, None], np.arange(n), weather] = 1.0
    x[0, np.arange(n), 2 + yesterday] = 1.0
    return x, dish


def main(quick: bool = False, seed: int = 0, progress: bool = True,
         out: str = "out/dinner_schedule") -> dict:
    rng = np.random.default_rng(seed)
    c = ur.models.elman(5, 8, 3, name="dinner")
    g = c.unroll(steps=10)
    params = c.init_params(seed=seed)

    def batches(epoch):
        x, y = days(64, 10, rng)
        yield {"x": x, "y": y}

    hist = ur.training.train(g, params, batches, ur.optim.Adam(params, lr=1e-2),
                             epochs=400 if quick else 2000, clip_norm=5.0, progress=progress,
                             desc="dinner", target_loss=None if quick else 1e-3)
    x, y = days(500, 30, np.random.default_rng(seed + 100))
    g30 = c.unroll(steps=30)
    pred = g30.run(params, x=x, y=y)["o"].argmax(-1)
    accuracy = float((pred == y).mean())
    print(f"{accuracy:.1%} of the dinners right on 500 sequences of 30 days "
          f"(trained on 10-day ones, {len(hist.losses)} updates)")
    weather = [0, 1, 0, 0, 1, 1, 0]                      # a week: sunny, rainy, sunny, ...
    week_x = np.zeros((7, 1, 5))
    week_x[range(7), 0, weather] = 1.0
    week_x[0, 0, 2 + 2] = 1.0                            # yesterday: chicken
    dish, week_y = 2, []
    for w in weather:
        dish = (dish + 1) % 3 if w == 0 else dish
        week_y.append(dish)
    week = c.unroll(steps=7).run(params, x=week_x, y=np.array(week_y)[:, None])["o"]
    print("yesterday: chicken")
    for t in range(7):
        print(f"  day {t + 1}: {WEATHER[weather[t]]:5s} -> {DISHES[int(week[t, 0].argmax())]:9s}"
              f" (right: {DISHES[week_y[t]]})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    c.render(out / "dinner_circuit.png")
    c.unroll(steps=3).render(out / "dinner_unrolled.png")
    print(f"circuit pictures in {out.resolve()}")
    return {"accuracy": accuracy, "history": hist}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/dinner_schedule")
    main(**vars(ap.parse_args()))
