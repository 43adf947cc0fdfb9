"""MedSight, the Streamlit app (`streamlit run app.py`): the router. Every page lives in pages/ and is a thin shell
over the library (session state in, library calls, widgets out); each sets up the shared chrome itself
(`medsight.app_state.page_setup`), so a page opened by its own URL looks the same as one reached from the menu.

With `st.navigation` the router runs first on every request, direct page URLs included, and Streamlit's classic
pages/ auto-discovery is off: the menu shows the titles below, not file names."""

import streamlit as st

PAGES = [
    st.Page("pages/0_Upload_and_score.py", title="Upload & score", icon=":material/upload_file:", default=True),
    st.Page("pages/1_Heatmap_viewer.py", title="Heatmap viewer", icon=":material/local_fire_department:"),
    st.Page("pages/2_Clinical_notes.py", title="Clinical notes", icon=":material/description:"),
    st.Page("pages/3_Chat.py", title="Chat", icon=":material/chat:"),
    st.Page("pages/4_Model_status.py", title="Model status", icon=":material/monitor_heart:"),
    st.Page("pages/5_Site_profile.py", title="Site profile", icon=":material/local_hospital:"),
]

st.navigation(PAGES).run()
