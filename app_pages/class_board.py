"""Class board page: every run of the class live, leaderboards, overlaid curves, teacher tools."""

import streamlit as st

from core.classboard import ClassBoardError
from ui.class_view import (
    board_live_ui,
    class_session,
    get_class_board,
    name_ui,
    teacher_login_ui,
    teacher_tools_ui,
)

st.title("Class board")
st.caption(
    "Every run of your class as it trains: who, which page, the settings, the time and the score, "
    "with a leaderboard per page. Pick runs to overlay their curves."
)
try:
    get_class_board()
except ClassBoardError as error:
    st.error(f"The class board is not available: {error}")
    st.stop()
code = class_session()

with st.sidebar:
    if code is not None:
        st.markdown(f"Class **{code}**")
    name_ui()
    with st.expander("Teacher", expanded=bool(st.session_state["class_teacher"])):
        if st.session_state["class_teacher"]:
            teacher_tools_ui(code)
        else:
            teacher_login_ui()

if code is None:
    st.info(
        "You are not in a class yet. Open the link your teacher gave you (it ends in ?class=…), "
        "then train on the Addition RNN or Digit Recognizer page: your runs appear here."
    )
else:
    board_live_ui(code)
