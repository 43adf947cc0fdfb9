"""Clinical notes: paste or upload a note; entities highlighted by type (negated ones marked), condition scores as
a chart, and how the note and the image agree."""

from __future__ import annotations

import streamlit as st

from medsight import app_state as state
from medsight import app_views as views

registry = state.page_setup("Clinical notes")
st.title("Clinical notes")
st.caption("The note is analysed in memory and kept only in this browser session.")

EXAMPLE_NOTE = ("72-year-old with fever and productive cough for 3 days. Right lower lobe consolidation, "
                "cannot exclude pneumonia. No pleural effusion. No pneumothorax. Heart size normal.")

uploaded = st.file_uploader("Upload a note (.txt)", type=["txt"], key="note_file")
if uploaded is not None and st.session_state.get("note_file_id") != uploaded.file_id:
    from medsight.nlp import NoteError
    from medsight.nlp.note import decode_note

    st.session_state["note_file_id"] = uploaded.file_id  # read once: edits in the text box are kept afterwards
    try:
        st.session_state["note_text"] = decode_note(uploaded.getvalue())
    except NoteError as exc:
        st.error(f"{uploaded.name}: {exc}")
if st.button("Use an example note", key="example_note"):
    st.session_state["note_text"] = EXAMPLE_NOTE
text = st.text_area("Clinical note or radiology report", key="note_text", height=160)
ner_choice = views.ner_choices()
model = st.radio("Entity model", list(ner_choice), key="ner_model", horizontal=True,
                 help="Entity-level F1 on BC5CDR Test and speed of each model: weights/ner/MODEL_CARD.md")

if st.button("Analyse the note", type="primary", key="analyse_note"):
    from medsight.nlp import NoteError, analyze_note

    study = state.current_study()
    image_args = {}
    if study is not None:
        study.detector = state.active_detector()
        image_args = study.note_image_args()
    try:
        with st.spinner("Analysing (the first note loads the language models)…"):
            registry.get("nlp" if ner_choice[model] is None else f"nlp_{ner_choice[model]}")
            state.set_note_analysis(analyze_note(text, ner=ner_choice[model], **image_args))
    except NoteError as exc:
        st.session_state.pop("note_analysis", None)
        st.error(str(exc))
    except state.ModelUnavailable as exc:
        state.show_unavailable(exc)
    except FileNotFoundError as exc:  # the accurate model's files went missing after the page offered it
        st.error(f"{model}: not installed ({exc}). Use the fast model.")

analysis = state.note_analysis()
if analysis is None:
    st.stop()

st.subheader("Entities")
legend = " ".join(f"<span style='background:{c};padding:1px 6px;border-radius:3px'>{label}</span>"
                  for label, c in views.ENTITY_COLOURS.items())
st.markdown(legend + " · <s>struck through</s> = negated · <i>italic</i> = possible", unsafe_allow_html=True)
st.markdown(views.highlighted_note_html(analysis.text, analysis.entities), unsafe_allow_html=True)
if analysis.negated_conditions:
    st.caption("Ruled out by the note: " + ", ".join(analysis.negated_conditions))

st.subheader("Conditions the note reports")
st.plotly_chart(views.conditions_figure(analysis.conditions), width="stretch")
st.caption(f"Backends: {analysis.backends}")

st.subheader("Note and image")
if analysis.fusion is None:
    study = state.current_study()
    result = study.vision if study is not None else None
    if result is not None and not result.scored:
        st.info("The radiograph of this case did not pass the chest-film check, so its score is not compared with "
                "the note.")
    else:
        st.info("Score a radiograph on the Upload & score page, then analyse the note again to compare them.")
else:
    fusion = analysis.fusion
    box = {"consistent": st.success, "discordant": st.warning}.get(fusion.agreement, st.info)
    box(f"**{fusion.agreement.capitalize()}**: {fusion.reason}")
    pct = fusion.image_normal_percentile
    st.caption(f"note abnormality {fusion.note_abnormality:.2f} · image {fusion.image_risk_band}"
               + (f" (above {pct:.1f}% of held-out normal films)" if pct is not None else "")
               + f" · agreement {fusion.agreement_score:.2f}")
st.caption(state.disclaimer())
