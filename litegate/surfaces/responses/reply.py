"""A whole chat answer (wire.ChatCompletion) -> one Response object (openai-responses.md §7).

Built from the same item builders as the stream (output.py), in the stream's order: reasoning,
the message, then each tool call; a cut answer marks its last item incomplete, as the stream does.
Answers that ran server-side tools are not built here: they replay their events through the
stream writer (framing off), which alone knows about web_search_call items.
"""

from __future__ import annotations

import time
from typing import Any

from msgspec import UNSET

from litegate.surfaces.responses.items import ToolKind, new_id, usage_json
from litegate.surfaces.responses.output import (
    call_item, citation, cut_reason, message_item, reasoning_item, response_object,
)
from litegate.surfaces.responses.request import Inbound
from litegate.wire import ChatCompletion


def to_response(completion: ChatCompletion, inbound: Inbound, *, response_id: str | None = None,
                created_at: int | None = None) -> dict[str, Any]:
    rid = response_id or new_id("resp")
    tag = rid.partition("_")[2] or rid
    choice = completion.choices[0] if completion.choices else None
    cut = cut_reason(choice.finish_reason if choice else None)
    output: list[dict[str, Any]] = []
    if choice is not None:
        msg = choice.message
        if msg.reasoning_content:
            output.append(reasoning_item(f"rs_{tag}_{len(output)}", msg.reasoning_content, inbound.encrypted_reasoning))
        if msg.content:
            notes = [citation(a) for a in msg.annotations] if msg.annotations is not UNSET else []
            output.append(message_item(f"msg_{tag}_{len(output)}", msg.content, notes, "completed"))
        for call in msg.tool_calls if msg.tool_calls is not UNSET else ():
            name = call.function.name
            output.append(call_item(f"fc_{tag}_{len(output)}", call.id or new_id("call"), name,
                                    call.function.arguments or "{}", inbound.tools.get(name) or ToolKind("function", name),
                                    "completed"))
    if cut and output and "status" in output[-1]:
        output[-1]["status"] = "incomplete"
    usage = usage_json(completion.usage if completion.usage is not UNSET else None, inbound.estimate)
    return response_object(rid, created_at or int(time.time()), "incomplete" if cut else "completed", inbound.echo,
                           output, usage, incomplete={"reason": cut} if cut else None,
                           completed_at=None if cut else int(time.time()))
