"""The Digit Recognizer's drawing square: the project's own Streamlit component (Custom Components v2).

Inline HTML, CSS and JavaScript (strings below, so pages and ui/ never read files), no build step and
no toolbar: the page's own Clear button is the one control. On pointer-up the browser sends the square
as a PNG data URL (canvas.toDataURL): a few KB per drawing, which matters because Streamlit resends
every widget's state with each rerun request, and a format Pillow checks before
core.canvas.decode_drawing accepts it.
"""

from __future__ import annotations

import streamlit as st

from core.canvas import DRAWING_SIDE

BRUSH_PIXELS = 20  # A round brush about as thick, relative to the square, as MNIST's pen strokes.

CSS = """
/* The square stays 280 px and never scrolls the page while a finger or pen draws on it. */
canvas {
  display: block;
  width: 280px;
  height: 280px;
  background: #000;
  border-radius: 0.5rem;
  cursor: crosshair;
  touch-action: none;
  user-select: none;
}
"""

JS = """
// The Digit Recognizer's drawing square: white round strokes on black, sent to Python on pointer-up.
//
// Streamlit calls this function when the square mounts and again whenever its data changes (only the
// Clear button changes it, through `version`), always with the same parent element: so the listeners
// are assigned, not added, and the canvas is emptied only when the version differs from the drawn one.
export default function ({ parentElement, data, setStateValue }) {
  const canvas = parentElement.querySelector("canvas");
  if (canvas === null) {
    return;
  }
  const context = canvas.getContext("2d");
  const side = canvas.width;
  const version = String(data?.version ?? 0);
  if (canvas.dataset.version !== version) {
    context.fillStyle = "#000";
    context.fillRect(0, 0, side, side);
    canvas.dataset.version = version;
  }
  context.strokeStyle = "#fff";
  context.fillStyle = "#fff";
  context.lineWidth = Number(data?.brush ?? 20);
  context.lineCap = "round";
  context.lineJoin = "round";

  let last = null;
  // Pointer coordinates in canvas pixels, whatever size the page shows the square at.
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [
      ((event.clientX - box.left) * side) / box.width,
      ((event.clientY - box.top) * side) / box.height,
    ];
  };
  const dot = ([x, y]) => {
    context.beginPath();
    context.arc(x, y, context.lineWidth / 2, 0, 2 * Math.PI);
    context.fill();
  };
  const line = ([x0, y0], [x1, y1]) => {
    context.beginPath();
    context.moveTo(x0, y0);
    context.lineTo(x1, y1);
    context.stroke();
  };

  canvas.onpointerdown = (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) {
      return;
    }
    event.preventDefault();
    // Capture keeps the stroke ours when the pointer leaves the square before it is lifted.
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    dot(last);
  };
  canvas.onpointermove = (event) => {
    if (last === null) {
      return;
    }
    // Coalesced events carry every sample the browser merged into this one: smooth fast strokes.
    const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const sample of samples.length ? samples : [event]) {
      const point = at(sample);
      line(last, point);
      last = point;
    }
  };
  // Sent at once on lifting the pen: a state value, so the drawing survives reruns of the page.
  const finish = () => {
    if (last === null) {
      return;
    }
    last = null;
    setStateValue("png", canvas.toDataURL("image/png"));
  };
  canvas.onpointerup = finish;
  canvas.onpointercancel = finish;
  canvas.onlostpointercapture = finish;
}
"""

_drawing_component = st.components.v2.component(
    "ltl_drawing_square",
    html=f'<canvas width="{DRAWING_SIDE}" height="{DRAWING_SIDE}" aria-label="Drawing square"></canvas>',
    css=CSS,
    js=JS,
)


def drawing_square(*, key: str, version: int) -> object:
    """Mount the square; return what the browser last sent (a PNG data URL, unchecked), or None."""
    result = _drawing_component(
        key=key,
        data={"version": version, "brush": BRUSH_PIXELS},
        default={"png": None},
        on_png_change=lambda: None,
        width=DRAWING_SIDE,
        height=DRAWING_SIDE,
    )
    return result.get("png")
