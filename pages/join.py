"""Join the workshop: the join code and a name, or a return key from another browser."""

import streamlit as st

from analysis.errors import TextlabError
from ui import state
from ui.widgets import literal, show_error
from ui.workshop import remember, write_cookie

st.title("Join the workshop")
if st.session_state.pop("_leaving", False):
    write_cookie(None)  # this browser forgets the participant
    st.info("You left on this browser. Your workspace is kept: join again with your return key.",
            icon=":material/logout:")
st.caption("Each participant gets a private workspace on this server: nobody else can see your files, projects or "
           "results. Ask the facilitator for the join code.")

workshop = state.workshop()
if state.login_configured():
    identity = state.login_identity()
    if identity is None:
        st.button("Sign in with your institution", type="primary", on_click=st.login, key="join_login")
        st.caption("Or join with the join code and a name below.")
    else:
        st.markdown(f"Signed in as **{literal(identity[2])}**. Type the join code once; next time, signing in is "
                    "enough.")
        login_code = st.text_input("Join code", type="password", key="join_login_code")
        if st.button("Join", type="primary", key="join_login_join"):
            try:
                person = workshop.join_with_login(login_code, *identity)
                workshop.deliver(person.id)
            except TextlabError as exc:
                show_error(exc)
            else:
                remember(workshop.token(person.id))
                st.rerun()
        st.stop()
with st.form("join_form"):
    code = st.text_input("Join code", type="password", key="join_code")
    name = st.text_input("Your name", max_chars=40, key="join_name", help="Shown to the facilitator only.")
    joined = st.form_submit_button("Join", type="primary")
if joined:
    try:
        person, token = workshop.join(code, name)
        workshop.deliver(person.id)  # the datasets the facilitator sent to everyone
    except TextlabError as exc:
        show_error(exc)
    else:
        remember(token)
        st.rerun()

with st.expander("Coming back from another browser?"):
    key = st.text_input("Your return key", type="password", key="join_return_key",
                        help="Shown in the sidebar under 'Your return key' after you joined.")
    if st.button("Come back", key="join_return"):
        person = workshop.participant(key)
        if person is None:
            st.error("That return key is not valid here (a reset of the workshop ends every key).",
                     icon=":material/key_off:")
        else:
            remember(key.strip())
            st.rerun()
