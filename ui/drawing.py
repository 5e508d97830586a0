"""The Digit Recognizer's drawing square: the project's own Streamlit component (Custom Components v2).

Inline HTML, CSS and JavaScript (ui/drawing.js, ui/drawing.css), no build step and no toolbar: the page's
own Clear button is the one control. On pointer-up the browser sends the square as a PNG data URL
(canvas.toDataURL): a few KB per drawing, which matters because Streamlit resends every widget's state
with each rerun request, and a format Pillow checks before core.canvas.decode_drawing accepts it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.canvas import DRAWING_SIDE

BRUSH_PIXELS = 20  # A round brush about as thick, relative to the square, as MNIST's pen strokes.
_HERE = Path(__file__).parent

_drawing_component = st.components.v2.component(
    "ltl_drawing_square",
    html=f'<canvas width="{DRAWING_SIDE}" height="{DRAWING_SIDE}" aria-label="Drawing square"></canvas>',
    css=(_HERE / "drawing.css").read_text(encoding="utf-8"),
    js=(_HERE / "drawing.js").read_text(encoding="utf-8"),
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
