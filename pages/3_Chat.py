"""Chat about the current case: streamed answers with the source of every retrieved passage, the tier that
answered, and the disclaimer."""

from __future__ import annotations

import streamlit as st

from medsight import app_state as state

registry = state.page_setup("Chat")
st.title("Chat about this case")
from medsight.chat import DISCLAIMER, chat  # noqa: E402
from medsight.chat.cascade import cited_sources, source_line  # noqa: E402
from medsight.chat.safety import MAX_QUESTION_CHARS, check_question, safe_markdown  # noqa: E402  (no remote images or HTML from chat text)

case = state.case_for_chat()
if case:
    vision = case.get("vision")
    if vision and vision.get("scored", True) and vision.get("anomaly_score") is not None:
        seen = f"anomaly score {vision['anomaly_score']:.3f} ({vision['risk_band']}, detector {vision.get('detector')})"
    elif vision:
        seen = "the radiograph did not pass the chest-film check (no score)"
    else:
        seen = "no image score"
    st.caption("Case: " + seen
               + (" · clinical note analysed" if "note" in case else " · no note"))
else:
    st.caption("No case yet: questions are answered from the knowledge base alone.")

history = st.session_state.setdefault("chat_history", [])
for message in history:
    with st.chat_message(message["role"]):
        st.markdown(safe_markdown(message["content"]))
        if message.get("tier"):
            st.caption(f"answered by: {message['tier']}" + (f" (after: {message['fallbacks']})" if message.get("fallbacks") else ""))

question = st.chat_input("Ask about the case, the score or a condition", key="chat_question",
                         max_chars=MAX_QUESTION_CHARS)
try:
    if question:
        check_question(question)
except ValueError as exc:  # empty or too long: one sentence, nothing lost from the conversation
    st.warning(str(exc))
    question = None
if question:
    with st.chat_message("user"):
        st.markdown(safe_markdown(question))
    with st.chat_message("assistant"):
        answer = chat(case, [{"role": m["role"], "content": m["content"]} for m in history], question)
        # Streamed by hand into one placeholder: st.write_stream inspects chunks through Arrow, which this
        # environment's pyarrow cannot import (see medsight.app_views.table_html).
        placeholder, text = st.empty(), ""
        for chunk in answer:
            text += chunk
            placeholder.markdown(safe_markdown(text) + "▌")
        placeholder.markdown(safe_markdown(text))
        fallbacks = "; ".join(f"{tier}: {why}" for tier, why in answer.fallbacks)
        st.caption(f"answered by: {answer.tier}" + (f" (after: {fallbacks})" if fallbacks else ""))
        if answer.sources:
            # the passages the answer cites first; the other retrieved ones (up to 30) folded away below them
            cited, rest = cited_sources(answer.sources, answer.body)
            with st.expander(f"Sources cited ({len(cited)})", expanded=True):
                for i, source in cited:
                    st.markdown(safe_markdown(source_line(i, source, markdown=True)))
            if rest:
                with st.expander(f"{len(rest)} more retrieved passage{'s' if len(rest) > 1 else ''}, not cited"):
                    for i, source in rest:
                        st.markdown(safe_markdown(source_line(i, source, markdown=True)))
    history.append({"role": "user", "content": question})
    history.append({"role": "assistant", "content": text,
                    "tier": answer.tier, "fallbacks": fallbacks})
if history and st.button("Clear the conversation", key="clear_chat"):
    st.session_state["chat_history"] = []
    st.rerun()
st.caption(DISCLAIMER)
