"""IVR trees with real calls: DTMF by SIP INFO through menus into queues, timeouts, hours, voicemail,
a CRM lookup, a survey after the agent hangs up."""

from __future__ import annotations

import asyncio
import textwrap
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType

from aiohttp import web

from engine.app import Engine
from engine.config.model import InboundRoute
from engine.core import acd as A
from engine.core import agent as ag
from engine.config.ivr import load_trees

from .harness import running, sipp, wait_until_quiet
from .test_acd import acd_config, agent_phone, rows

NUMBER = "1100"


def ivr_config(stack, dsn, tmp_path, tree: str):
    """The example configuration, with quick queue timers and this one tree on NUMBER."""
    folder = tmp_path / "ivr"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t.yaml").write_text(textwrap.dedent(tree))
    cfg = acd_config(stack, dsn, tmp_path)
    trees = MappingProxyType({**cfg.trees, **load_trees(folder)})
    cfg = replace(cfg, trees=trees, inbound=(InboundRoute(number=NUMBER, ivr="t"), *cfg.inbound))
    assert cfg.problems() == []  # the tree passes check-config
    return cfg


async def steps(dsn) -> list[tuple[str, str, str]]:
    return [(r["node"], r["input"], r["result"])
            for r in await rows(dsn, "SELECT node, input, result FROM ivr_steps ORDER BY seq")]


MENU = """\
start: menu
nodes:
  menu:
    menu:
      prompt: [beep]
      options: {"1": support, "2": bye}
      timeout_seconds: 2
      retries: 1
      after_retries: bye
  support:
    queue: {name: support}
  bye:
    hangup: {say: [goodbye]}
"""


async def test_a_caller_keys_through_a_menu_into_a_queue_and_reaches_an_agent(stack, dsn, tmp_path):
    engine = Engine(ivr_config(stack, dsn, tmp_path, MENU))
    async with running(engine):
        await engine.acd.request(A.AgentRequest("9001", ag.LogIn(frozenset({"support"}), "")))
        phone, phone_done = await agent_phone(stack, 1, answer_ms="200", hangup_ms="1500")
        (await sipp(stack, "caller_dtmf.xml", NUMBER, variables={"caller": "5558001", "digits": "1"})).check()
        (await phone_done()).check()
        await wait_until_quiet(engine, 1)
    assert await steps(dsn) == [("menu", "", ""), ("menu", "1", "support"), ("support", "", "")]
    [call] = await rows(dsn, "SELECT id, ivr_tree, ivr_version, ended_by FROM calls")
    assert call["ivr_tree"] == "t" and len(call["ivr_version"]) == 12 and call["ended_by"] == "agent"
    [entry] = await rows(dsn, "SELECT outcome, agent_id FROM queue_entries")
    assert (entry["outcome"], entry["agent_id"]) == ("answered", "9001")
    variables = {r["name"]: r["value"] for r in await rows(dsn, "SELECT name, value FROM call_variables")}
    assert variables == {"caller": "5558001", "dialed": NUMBER}


async def test_invalid_keys_and_silence_use_the_retries_then_the_fallback(stack, dsn, tmp_path):
    engine = Engine(ivr_config(stack, dsn, tmp_path, MENU))
    async with running(engine):
        # 7 is no option; then nothing: the last retry times out and the tree says goodbye
        (await sipp(stack, "caller_dtmf.xml", NUMBER, variables={"digits": "7"})).check()
        await wait_until_quiet(engine, 1)
    assert await steps(dsn) == [("menu", "", ""), ("menu", "7", "invalid"), ("menu", "", "timeout"), ("bye", "", "")]
    [call] = await rows(dsn, "SELECT ended_by, hangup_cause FROM calls")
    assert call["ended_by"] == "engine" and call["hangup_cause"] == 16


async def test_a_branch_on_open_hours(stack, dsn, tmp_path):
    today = datetime.now(timezone.utc).date().isoformat()
    tree = f"""\
    start: holiday
    hours:
      always: {{timezone: UTC, weekly: {{mon: ["00:00-24:00"], tue: ["00:00-24:00"], wed: ["00:00-24:00"],
               thu: ["00:00-24:00"], fri: ["00:00-24:00"], sat: ["00:00-24:00"], sun: ["00:00-24:00"]}}}}
      shut-today: {{timezone: UTC, weekly: {{mon: ["00:00-24:00"]}}, holidays: ["{today}"]}}
    nodes:
      holiday:
        branch: {{when: [{{closed: shut-today, then: open-check}}], default: wrong}}
      open-check:
        branch: {{when: [{{open: always, then: right}}], default: wrong}}
      right: {{hangup: {{say: [beep]}}}}
      wrong: {{hangup: {{}}}}
    """
    engine = Engine(ivr_config(stack, dsn, tmp_path, tree))
    async with running(engine):
        (await sipp(stack, "caller_wait_bye.xml", NUMBER)).check()
        await wait_until_quiet(engine, 1)
    assert await steps(dsn) == [("holiday", "", "open-check"), ("open-check", "", "right"), ("right", "", "")]


async def test_a_voicemail_is_left_and_its_recording_row_is_right(stack, dsn, tmp_path):
    tree = """\
    start: vm
    nodes:
      vm:
        voicemail: {prompt: [hello-world], max_seconds: 20}
    """
    engine = Engine(ivr_config(stack, dsn, tmp_path, tree))
    async with running(engine):
        # the caller speaks (6.7 s of audio from the answer on) and hangs up after 9 s
        (await sipp(stack, "caller_speak.xml", NUMBER, variables={"hangup_ms": "9000"})).check()
        await wait_until_quiet(engine, 1)
        await engine.writer.wait_idle()
    [rec] = await rows(dsn, "SELECT * FROM recordings")
    [call] = await rows(dsn, "SELECT id FROM calls")
    assert rec["kind"] == "voicemail" and rec["call_id"] == call["id"] and rec["agent_id"] is None
    file = Path(rec["path"])
    assert file.exists() and rec["size_bytes"] == file.stat().st_size > 8000  # at least a second of audio
    assert 2.5 < rec["duration_seconds"] < 9.0  # what was said after the prompt and the beep


async def test_a_crm_lookup_routes_a_vip_and_a_survey_follows_the_agent(stack, dsn, tmp_path):
    crm_calls: list[str] = []

    async def customer(request: web.Request) -> web.Response:
        crm_calls.append(request.match_info["number"])
        return web.json_response({"customer": {"tier": "gold", "name": "Ann"}})

    app = web.Application()
    app.router.add_get("/customers/{number}", customer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    tree = f"""\
    start: crm
    nodes:
      crm:
        http: {{url: "http://127.0.0.1:{port}/customers/{{caller}}", assign: {{tier: customer.tier}},
                next: route, on_failure: plain}}
      route:
        branch: {{when: [{{variable: tier, equals: gold, then: vip}}], default: plain}}
      vip: {{queue: {{name: support, priority: "10", after: survey}}}}
      plain: {{queue: {{name: support, after: survey}}}}
      survey:
        survey: {{questions: [{{name: satisfaction, prompt: [beep]}}], timeout_seconds: 8}}
    """
    try:
        engine = Engine(ivr_config(stack, dsn, tmp_path, tree))
        async with running(engine):
            await engine.acd.request(A.AgentRequest("9001", ag.LogIn(frozenset({"support"}), "")))
            phone, phone_done = await agent_phone(stack, 1, answer_ms="200", hangup_ms="1500")
            # The agent hangs up ~2 s in; the survey asks; the caller keys 4 at 5 s.
            (await sipp(stack, "caller_dtmf.xml", NUMBER, variables={"caller": "5558002", "digits": "4",
                                                                      "dtmf_delay_ms": "5000"})).check()
            (await phone_done()).check()
            await wait_until_quiet(engine, 1)
            await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
    finally:
        await runner.cleanup()
    assert crm_calls == ["5558002"]
    [entry] = await rows(dsn, "SELECT priority, outcome FROM queue_entries")
    assert (entry["priority"], entry["outcome"]) == (10, "answered")
    [answer] = await rows(dsn, "SELECT question, answer FROM survey_answers")
    assert (answer["question"], answer["answer"]) == ("satisfaction", 4)
    [call] = await rows(dsn, "SELECT ended_by FROM calls")
    assert call["ended_by"] == "engine"  # the IVR said thanks and hung up after the survey
    assert ("crm", "", "ok tier=gold") in await steps(dsn)


async def test_the_survey_after_the_agent_still_happens_when_the_agent_hung_up_while_the_engine_was_down(
        stack, dsn, tmp_path):
    """Issue 11 items 3 and 4: the restarted engine learns from the call's bridge that the caller
    was with agent 9001 and that `after: survey` comes next; the IVR path goes on numbering."""
    tree = """\
    start: q
    nodes:
      q: {queue: {name: support, after: survey}}
      survey:
        survey: {questions: [{name: satisfaction, prompt: [beep]}], timeout_seconds: 15}
    """
    cfg = ivr_config(stack, dsn, tmp_path, tree)
    cfg = replace(cfg, engine=replace(cfg.engine, shutdown_grace_seconds=0.1))
    first = Engine(cfg)
    async with running(first):
        await first.acd.request(A.AgentRequest("9001", ag.LogIn(frozenset({"support"}), "")))
        phone, phone_done = await agent_phone(stack, 1, answer_ms="200", hangup_ms="1500")
        caller = asyncio.create_task(sipp(stack, "caller_dtmf.xml", NUMBER, variables={
            "digits": "4", "dtmf_delay_ms": "9000"}))
        await first.calls.wait_until(lambda m: any(s.state.phase.value == "connected" for s in m.sessions.values()))
    (await phone_done()).check()  # the agent hangs up while no engine runs
    second = Engine(cfg)
    async with running(second):
        (await caller).check()
        await wait_until_quiet(second, 1)
        await second.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
    [answer] = await rows(dsn, "SELECT question, answer FROM survey_answers")
    assert (answer["question"], answer["answer"]) == ("satisfaction", 4)
    path = await rows(dsn, "SELECT seq, node FROM ivr_steps ORDER BY seq, at")
    assert [r["seq"] for r in path] == list(range(1, len(path) + 1)), path   # no step numbered twice
    assert [r["node"] for r in path][0] == "q" and "survey" in [r["node"] for r in path]


async def test_a_caller_hanging_up_mid_prompt_leaves_nothing_behind(stack, dsn, tmp_path):
    engine = Engine(ivr_config(stack, dsn, tmp_path, MENU))
    async with running(engine):
        (await sipp(stack, "caller_hangup.xml", NUMBER, variables={"hangup_ms": "300"})).check()
        await wait_until_quiet(engine, 1)
        assert engine.calls.sessions == {}
    [call] = await rows(dsn, "SELECT ended_by, ended_at FROM calls")
    assert call["ended_by"] == "caller" and call["ended_at"] is not None


async def test_a_reload_gives_new_calls_the_new_tree_while_calls_in_progress_keep_theirs(stack, dsn, tmp_path):
    v1 = MENU.replace('options: {"1": support, "2": bye}', 'options: {"1": bye, "2": support}')
    engine = Engine(ivr_config(stack, dsn, tmp_path / "v1", v1))
    async with running(engine):
        # The first caller is in the menu (keys in 4 s) when the tree changes under it.
        first = asyncio.create_task(sipp(stack, "caller_dtmf.xml", NUMBER,
                                         variables={"caller": "5558101", "digits": "1", "dtmf_delay_ms": "4000"}))
        await engine.calls.wait_until(lambda m: any(s.state.phase.value == "ivr" for s in m.sessions.values()))
        v2 = MENU.replace('options: {"1": support, "2": bye}', 'options: {"1": other, "2": support}') + """\
  other:
    hangup: {say: [beep]}
"""
        engine.config = ivr_config(stack, dsn, tmp_path / "v2", v2)  # what SIGHUP does with a new file
        (await sipp(stack, "caller_dtmf.xml", NUMBER, variables={"caller": "5558102", "digits": "1"})).check()
        (await first).check()
        await wait_until_quiet(engine, 2)
    paths = await rows(dsn, """SELECT c.caller_number, c.ivr_version, s.version, s.node, s.result
                               FROM ivr_steps s JOIN calls c ON c.id = s.call_id ORDER BY s.seq""")
    by_caller: dict[str, list] = {}
    for r in paths:
        by_caller.setdefault(r["caller_number"], []).append(r)
    old, new = by_caller["5558101"], by_caller["5558102"]
    chose = lambda path: [r["result"] for r in path if r["node"] == "menu" and r["result"] not in ("", "timeout")]  # noqa: E731
    assert chose(old) == ["bye"]     # key 1 in the tree the call started on
    assert chose(new) == ["other"]   # key 1 in the new tree
    assert {r["version"] for r in old} == {old[0]["ivr_version"]} != {r["version"] for r in new}


async def test_a_transfer_dials_out_and_bridges(stack, dsn, tmp_path):
    tree = """\
    start: xfer
    nodes:
      xfer: {transfer: {to: "5559999", timeout_seconds: 10, on_failure: sorry}}
      sorry: {hangup: {say: [vm-sorry]}}
    """
    engine = Engine(ivr_config(stack, dsn, tmp_path, tree))
    port = int(stack["ASTERISK_CARRIER_SIP_PORT"]) - int(stack["ASTERISK_AGENT_PORT_BASE"])
    async with running(engine):
        far, far_done = await agent_phone(stack, port, answer_ms="300", hangup_ms="1500")
        (await sipp(stack, "caller_wait_bye.xml", NUMBER)).check()
        (await far_done()).check()
        await wait_until_quiet(engine, 1)
    events = [r["kind"] for r in await rows(dsn, "SELECT kind FROM call_events ORDER BY at")]
    assert "transferred" in events
    [call] = await rows(dsn, "SELECT ended_by FROM calls")
    assert call["ended_by"] == "agent"  # the far end hung up first


async def test_a_callback_asked_for_in_the_ivr_is_stored(stack, dsn, tmp_path):
    tree = """\
    start: cb
    nodes:
      cb: {callback: {prompt: [beep], queue: support}}
    """
    engine = Engine(ivr_config(stack, dsn, tmp_path, tree))
    async with running(engine):
        (await sipp(stack, "caller_dtmf.xml", NUMBER, variables={"caller": "5558003", "digits": "1"})).check()
        await wait_until_quiet(engine, 1)
    [cb] = await rows(dsn, "SELECT number, queue, source FROM callbacks")
    assert (cb["number"], cb["queue"], cb["source"]) == ("5558003", "support", "ivr")


async def test_a_flood_of_star_and_pound_ends_cleanly(stack, dsn, tmp_path):
    engine = Engine(ivr_config(stack, dsn, tmp_path, MENU))
    async with running(engine):
        (await sipp(stack, "caller_dtmf.xml", NUMBER, variables={"digits": "*#*#"})).check()
        await wait_until_quiet(engine, 1)
        assert engine.calls.sessions == {}
    results = [r for _, _, r in await steps(dsn)]
    assert results[:3] == ["", "invalid", "invalid"] and results[-1] == ""  # two strikes, then goodbye
    [call] = await rows(dsn, "SELECT ended_by, ended_at, answered_at FROM calls")
    assert call["ended_by"] == "engine" and call["ended_at"] and call["answered_at"]
