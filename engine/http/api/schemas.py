"""The JSON Schemas the API's bodies, answers and OpenAPI components share."""

from __future__ import annotations

from typing import Any

from engine.core import agent as ag

__all__ = ["AGENT_STATES", "BOOL", "CAMPAIGN_STATES", "INT", "NAME", "NTIME", "NUM", "NUMBER", "QUEUE_NAMES", "SCHEMAS",
           "STR", "TIME", "nullable", "obj", "ref"]


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **more: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **more}


def obj(required: tuple[str, ...], closed: bool = False, **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "required": list(required), "properties": properties}
    if closed:
        schema["additionalProperties"] = False
    return schema


TIME = {"type": "string", "format": "date-time"}
NTIME = nullable("string", format="date-time")
STR, INT, NUM, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
NAME = {"type": "string", "minLength": 1, "maxLength": 100}
AGENT_STATES = [p.value for p in ag.AgentPhase]
CAMPAIGN_STATES = ["running", "paused", "stopped"]

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": obj(("error",), error={"type": "string", "description": "what is wrong, in one line"},
                 field={"type": "string", "description": "the request field at fault"},
                 reasons={"type": "array", "items": obj(("field", "reason"), field=STR, value=STR, reason=STR)},
                 lead_id=INT),
    "Agent": obj(("id", "state", "reason", "since", "seconds_in_state", "call_id", "queues"),
                 id=STR, state={"enum": AGENT_STATES}, reason=nullable("string"), since=NUM, seconds_in_state=NUM,
                 call_id=nullable("string"), queues={"type": "array", "items": STR},
                 call_queue=nullable("string", description="the queue of the agent's call"),
                 caller=nullable("string", description="the caller number of the agent's call")),
    "Queue": obj(("name", "waiting", "longest_wait_seconds", "agents", "service_level_today", "service_level_target"),
                 name=STR, waiting=INT, longest_wait_seconds=NUM,
                 agents={"type": "object", "additionalProperties": INT, "description": "agents by state"},
                 offered_today=nullable("integer"), answered_today=nullable("integer"),
                 abandoned_today=nullable("integer"),
                 service_level_today=nullable("number", description="answered within target / offered"),
                 service_level_target=obj(("seconds", "percent"), seconds=NUM, percent=NUM)),
    "Campaign": obj(("name", "mode", "active", "state", "abandon_target_percent"),
                    name=STR, mode={"enum": ["preview", "progressive", "predictive", "agentless"]}, active=BOOL,
                    state={"enum": CAMPAIGN_STATES, "description": "what start/pause/stop (or the YAML) set"},
                    controlled_by={"enum": ["api", "config"]}, abandon_target_percent=NUM,
                    dial_rate_per_minute=NUM, lines_in_flight=INT, live_answers=INT, abandoned=INT,
                    abandon_rate=NUM, agents_busy=INT, agents_logged_in=INT),
    "Status": obj(("at", "queues", "agents", "campaigns"), at=NUM,
                  queues={"type": "array", "items": ref("Queue")}, agents={"type": "array", "items": ref("Agent")},
                  campaigns={"type": "array", "items": ref("Campaign")}),
    "Call": obj(("id", "direction", "caller_number", "dialed_number", "started_at", "answered_at", "ended_at"),
                id=STR, direction={"enum": ["inbound", "outbound"]}, caller_number=STR, caller_name=STR,
                dialed_number=STR, started_at=TIME, answered_at=NTIME, ended_at=NTIME,
                hangup_cause=nullable("integer"), hangup_cause_text=nullable("string"), ended_by=nullable("string"),
                ivr_tree=nullable("string"), ivr_version=nullable("string")),
    "Decision": obj(("allowed", "reason", "detail", "rules"), at=TIME, mode=STR, allowed=BOOL,
                    reason={"type": "string", "description": "a stable code: allowed, dnc_global, outside_hours, ..."},
                    detail=STR, rules={"type": "object", "description": "the rule values and facts the gate saw"}),
    "DialAttempt": obj(("id", "campaign", "number", "mode", "placed_at", "outcome", "decision"),
                       id=STR, campaign=STR, lead_id=nullable("integer"), number=STR, mode=STR, placed_at=TIME,
                       answered_at=NTIME, connected_at=NTIME, ended_at=NTIME, amd_status=nullable("string"),
                       outcome=nullable("string"), disposition=nullable("string"), agent_id=nullable("string"),
                       decision={"oneOf": [ref("Decision"), {"type": "null"}]}),
}
SCHEMAS["CallDetail"] = {"allOf": [ref("Call"), obj(
    ("events", "ivr_steps", "queue_entries", "offers", "dispositions", "dial_attempt"),
    events={"type": "array", "items": obj(("at", "kind", "detail"), at=TIME, kind=STR, detail=STR)},
    ivr_steps={"type": "array", "items": obj(("seq", "at", "node", "verb"), seq=INT, at=TIME, tree=STR, node=STR,
                                             verb=STR, input=STR, result=STR)},
    queue_entries={"type": "array", "items": obj(("queue", "entered_at", "outcome"), queue=STR, priority=INT,
                                                 entered_at=TIME, left_at=NTIME, outcome=nullable("string"),
                                                 wait_seconds=nullable("number"), agent_id=nullable("string"))},
    offers={"type": "array", "description": "every offer to an agent, and why that agent",
            "items": obj(("queue", "agent_id", "offered_at", "strategy", "reason", "result"), queue=STR, agent_id=STR,
                         offered_at=TIME, ended_at=NTIME, result=nullable("string"), strategy=STR,
                         requirement={"type": "object"}, expansion_step=INT, candidates={"type": "array"},
                         reason={"type": "string", "description": "longest_idle: 9001 chosen of 2 eligible ..."})},
    dispositions={"type": "array", "items": obj(("agent_id", "code", "name", "at"), agent_id=STR, code=STR, name=STR,
                                                at=TIME)},
    dial_attempt={"oneOf": [ref("DialAttempt"), {"type": "null"}],
                  "description": "outbound: the dial and the compliance gate's decision"})]}

QUEUE_NAMES = {"type": "array", "items": NAME, "minItems": 1, "maxItems": 50}
NUMBER = {"type": "string", "minLength": 1, "maxLength": 40}
