"""An interactive page for stepping through the forward pass and BPTT of an unrolled graph.

``explore(g, path, params, **inputs)`` writes one self-contained HTML file (no server, no
network): the unrolled graph as the pictures draw it; step buttons, a slider and a play button
that run the forward pass column by column (t = 1..τ) and then the backward pass (t = τ..1),
highlighting the step being computed and showing its equations; a click on a value shows its
shape, norm and a heat strip of its entries, with its gradient; and the bars of ‖∂L/∂h⁽ᵗ⁾‖
under the columns. Every number is the real one, from the reference interpreter.

The page reads ``#frame=N`` (and ``&select=v_h_2``) from its address, so that a test (or a
link in course notes) opens it at a given step.
"""
from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import numpy as np

from ..errors import RenderError
from ..ir import Graph, Value
from .backend import svg

__all__ = ["explore"]

_STRIP = 16                             # entries shown in a value's heat strip


def node_id(v: Value) -> str:
    """The id of a value's node in the unrolled pictures (``v_h_3``, ``v_h_m1`` for h(−1))."""
    t = "c" if v.t is None else ("m" + str(-v.t) if v.t < 0 else str(v.t))
    return "v_" + "".join(ch if ch.isalnum() else "_" for ch in v.name) + f"_{t}"


def explore(g: Graph, path, params: dict, title: str | None = None, **inputs) -> Path:
    """Write the explorer of ``g`` on these parameters and inputs to ``path`` (.html).

    Drawing options of :meth:`Graph.to_dot` (``max_steps``, ``truncate``, ``checkpoints``,
    ``relative`` ...) may be passed among the keyword arguments.
    """
    from ..api import grad_graph
    from ..runtime import bind_arguments, interpret
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise RenderError(f"explore writes an HTML page: give a path ending in .html, not "
                          f"{str(path)!r}")
    if not path.parent.is_dir():
        raise RenderError(f"explore: the folder {str(path.parent)!r} does not exist")
    if g.loss is None:
        raise RenderError(f"explore steps through the forward pass and BPTT: {g.name} has no "
                          "loss (add c.loss(...) to the circuit)")
    draw = {k: inputs.pop(k) for k in list(inputs) if k in _DRAW}
    gg = grad_graph(g, None)
    bound = bind_arguments(g, params, inputs)
    env = interpret(gg, dict(bound.env), bound.xp)
    picture = svg(g.to_dot(**draw))
    shown = set(re.findall(r"<title>(v_[^<&]+)</title>", picture))
    values = {}
    for v in list(g.inputs()) + [v for e in g.eqns for v in e.outs]:
        ident = node_id(v)
        if ident in shown and ident not in values and v in env:
            ct = gg.cotangents.get(v)
            values[ident] = dict(name=v.name, t=v.t, value=_summary(env[v], v.aval.batched),
                                 grad=_summary(env[ct], ct.aval.batched)
                                 if ct is not None and ct in env else None)
    T = g.steps
    states = list(g.states)
    norms = {s: [_norm(env.get(gg.cotangents.get(g.states[s].get(t)))) for t in range(1, T + 1)]
             for s in states}
    frames = [dict(phase="forward", t=t, eqs=_forward_equations(g, t)) for t in range(1, T + 1)]
    frames += [dict(phase="backward", t=t, eqs=_backward_equations(gg, g, t))
               for t in range(T, 0, -1)]
    bars = {s: [node_id(g.states[s][t]) if t in g.states[s] else None
                for t in range(1, T + 1)] for s in states}
    data = dict(name=g.name, steps=T, frames=frames, values=values, norms=norms, bars=bars,
                loss=float(np.asarray(env[gg.loss]).reshape(-1)[0]))
    # each piece goes in once, in one pass: nothing a name holds is read as a placeholder,
    # and in the JSON every < is escaped (no </script>, no <!-- can end or open a tag there)
    pieces = {"__TITLE__": html.escape(title or f"{g.name}: forward and BPTT"),
              "__SVG__": picture[picture.index("<svg"):],
              "__DATA__": json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e")
              .replace("&", "\\u0026")}
    page = re.sub("__TITLE__|__SVG__|__DATA__", lambda m: pieces[m.group(0)], _PAGE)
    path.write_text(page, encoding="utf-8")
    return path


_DRAW = ("max_steps", "keep", "truncate", "checkpoints", "relative", "mode")


def _summary(a, batched: bool) -> dict:
    """Shape (per sequence), norm and the first entries of the first sequence of a value."""
    a = np.asarray(a, dtype=float)
    first = a[0] if batched and a.ndim >= 1 and a.shape[0] >= 1 else a
    flat = np.ravel(first)[:_STRIP]
    return dict(shape=list(a.shape[1:] if batched else a.shape), norm=_norm(a),
                strip=[float(x) if math.isfinite(x) else None for x in flat])


def _norm(a) -> float | None:
    if a is None:
        return None
    n = float(np.sqrt(np.sum(np.asarray(a, dtype=float) ** 2)))
    return n if math.isfinite(n) else None


def _forward_equations(g: Graph, t: int) -> list:
    """The step equations of the circuit with t filled in (h(t-1) -> h(2) at t = 3)."""
    if g.circuit is None:
        return []

    def fill(m):
        k = int(m.group(2) or 0) * (1 if m.group(1) == "+" else -1)
        return f"({t + k})"
    return [re.sub(r"\(t(?:([+-])(\d+))?\)", fill, line.split("    (at")[0])
            for line in g.circuit.equations()]


def _backward_equations(gg: Graph, g: Graph, t: int) -> list:
    """The backward equations of step t that give the gradients of the named values
    (∂o[t], ∂h[t], ∂a[t] = ∂h[t] * (1 - h[t]²), ...), in the order they run."""
    named = {ct for v, ct in gg.cotangents.items()
             if v.t == t and not v.name.startswith(("_", "Σ"))}
    return [repr(e) for e in gg.eqns[len(g.eqns):] if e.step == t and
            any(o in named for o in e.outs)][:8]


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; margin: 0 0 8px; }
#controls { margin: 8px 0; display: flex; gap: 8px; align-items: center; }
#controls button { font-size: 15px; padding: 3px 10px; }
#frame-label { min-width: 230px; font-weight: bold; }
#layout { display: flex; gap: 16px; align-items: flex-start; }
#graph svg { max-width: 760px; height: auto; }
#side { min-width: 300px; max-width: 360px; }
#equation { font-family: "DejaVu Sans Mono", monospace; font-size: 13px; background: #f4f4f4;
            padding: 6px; white-space: pre-wrap; min-height: 60px; }
#panel { margin-top: 10px; font-size: 14px; }
.strip { display: flex; margin: 4px 0; }
.strip span { width: 16px; height: 16px; border: 1px solid #ddd; }
g.node.done ellipse { stroke: #2b6cb0; stroke-width: 2; }
g.node.current ellipse { stroke: #d97706; stroke-width: 4; }
g.node.grad ellipse { stroke: #b03a2e; stroke-width: 4; }
g.node.selected ellipse { fill: #fde68a !important; }
#bars { position: relative; height: 90px; margin-top: 4px; border-bottom: 1px solid #999; }
#bars div { position: absolute; bottom: 0; width: 22px; background: #b03a2e; opacity: 0.45; }
#bars div.now { opacity: 1; }
</style></head><body>
<h1>__TITLE__</h1>
<div id="controls">
 <button id="first" title="first step">|◀</button><button id="prev">◀</button>
 <button id="play">▶ play</button><button id="next">▶</button>
 <input id="slider" type="range" min="0" value="0">
 <span id="frame-label"></span>
 <label>speed <select id="speed"><option value="1200">slow</option>
  <option value="600" selected>normal</option><option value="250">fast</option></select></label>
</div>
<div id="layout">
 <div id="left"><div id="graph">__SVG__</div>
  <div id="bars"></div>
  <div id="bars-label">‖∂L/∂<span id="bars-state"></span>⁽ᵗ⁾‖ under each step; loss
   <span id="loss"></span></div></div>
 <div id="side">
  <div id="equation"></div>
  <div id="panel">Click a value to see it.</div>
 </div>
</div>
<script id="data" type="application/json">__DATA__</script>
<script>
const D = JSON.parse(document.getElementById("data").textContent);
const nodes = {};
document.querySelectorAll("#graph g.node").forEach(g => {
  const title = g.querySelector("title");
  if (title) nodes[title.textContent] = g;
});
const slider = document.getElementById("slider");
slider.max = D.frames.length - 1;
let frame = 0, selected = null, timer = null;
const state = Object.keys(D.norms)[0];
const bars = document.getElementById("bars");
document.getElementById("bars-state").textContent = state || "h";
const peak = Math.max(1e-300, ...(D.norms[state] || []).filter(x => x !== null));
const left0 = bars.getBoundingClientRect().left;
(D.norms[state] || []).forEach((n, i) => {
  const b = document.createElement("div");
  b.id = "bar-" + (i + 1);
  b.title = "t = " + (i + 1) + ": " + (n === null ? "–" : n.toExponential(2));
  b.style.height = (n === null ? 0 : Math.max(2, 80 * n / peak)) + "px";
  const node = nodes[(D.bars[state] || [])[i]];
  const r = node ? node.getBoundingClientRect() : null;
  b.style.left = (r ? r.left + r.width / 2 - 11 - left0 : 26 * i) + "px";
  bars.appendChild(b);
});
document.getElementById("loss").textContent = D.loss.toPrecision(6);
function esc(s) {
  return String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
}
function color(x, m) {
  if (x === null) return "#000";
  const a = Math.min(1, Math.abs(x) / (m || 1));
  return x >= 0 ? `rgba(176,58,46,${a})` : `rgba(43,108,176,${a})`;
}
function strip(s) {
  if (!s) return "";
  const m = Math.max(1e-300, ...s.strip.filter(x => x !== null).map(Math.abs));
  return '<div class="strip">' + s.strip.map(x =>
    `<span style="background:${color(x, m)}" title="${x}"></span>`).join("") + "</div>";
}
function show(id) {
  selected = id;
  for (const [k, g] of Object.entries(nodes)) g.classList.toggle("selected", k === id);
  const v = D.values[id];
  const p = document.getElementById("panel");
  if (!v) { p.textContent = "Click a value to see it."; return; }
  const when = v.t === null ? "" : `(${v.t})`;
  let out = `<b>${esc(v.name)}${when}</b> shape ${JSON.stringify(v.value.shape)}, ` +
            `norm <span id="value-norm">${v.value.norm === null ? "–" : v.value.norm.toExponential(3)}</span>` +
            strip(v.value);
  if (v.grad) out += `∂L/∂${esc(v.name)}${when}: norm <span id="grad-norm">${v.grad.norm === null ?
      "–" : v.grad.norm.toExponential(3)}</span>` + strip(v.grad);
  p.innerHTML = out;
}
function go(n) {
  frame = Math.max(0, Math.min(D.frames.length - 1, n));
  slider.value = frame;
  const f = D.frames[frame];
  document.getElementById("frame-label").textContent =
    (f.phase === "forward" ? "forward, t = " : "backward (BPTT), t = ") + f.t;
  for (const [k, g] of Object.entries(nodes)) {
    const v = D.values[k];
    g.classList.remove("current", "done", "grad");
    if (!v || v.t === null) continue;
    if (f.phase === "forward") {
      if (v.t === f.t) g.classList.add("current"); else if (v.t < f.t && v.t >= 1) g.classList.add("done");
    } else if (v.t === f.t && v.grad) g.classList.add("grad");
  }
  document.querySelectorAll("#bars div").forEach((b, i) =>
    b.classList.toggle("now", f.phase === "backward" && i + 1 === f.t));
  document.getElementById("equation").textContent = f.eqs.join("\n");
  location.replace("#frame=" + frame + (selected ? "&select=" + selected : ""));
}
for (const [k, g] of Object.entries(nodes)) {
  g.style.cursor = "pointer";
  g.addEventListener("click", () => { show(k); go(frame); });
}
document.getElementById("first").onclick = () => go(0);
document.getElementById("prev").onclick = () => go(frame - 1);
document.getElementById("next").onclick = () => go(frame + 1);
slider.oninput = () => go(+slider.value);
document.getElementById("play").onclick = () => {
  if (timer) { clearInterval(timer); timer = null; return; }
  timer = setInterval(() => { if (frame >= D.frames.length - 1) { clearInterval(timer);
    timer = null; } else go(frame + 1); }, +document.getElementById("speed").value);
};
const h = new URLSearchParams(location.hash.slice(1));
if (h.get("select")) show(h.get("select"));
go(+(h.get("frame") || 0));
</script></body></html>
"""
