"""The official `openai` and `anthropic` Python SDKs, unchanged, against a running platform.

Run by tests/e2e/suite/python-sdks.test.mjs with OPENCODE_BASE (the platform's origin) and
OPENCODE_TOKEN (a JWT) set; each check prints its name, and the first failure ends the run
with a traceback and exit status 1.
"""

import base64
import json
import os
import struct
import sys
import urllib.error
import urllib.request
import uuid

import anthropic
import openai

BASE = os.environ["OPENCODE_BASE"]
TOKEN = os.environ["OPENCODE_TOKEN"]

oa = openai.OpenAI(base_url=f"{BASE}/v1", api_key=TOKEN, max_retries=0)
an = anthropic.Anthropic(base_url=BASE, api_key=TOKEN, max_retries=0)


def unique(text):
    return f"{text} {uuid.uuid4()}"


def check(fn):
    print(f"- {fn.__name__}", flush=True)
    fn()


def openai_chat_whole_and_streamed():
    done = oa.chat.completions.create(model="opencode/chat", messages=[{"role": "user", "content": unique("hello")}])
    assert done.choices[0].message.content.startswith("Hello from openai"), done
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    chunks = list(
        oa.chat.completions.create(
            model="opencode/chat",
            messages=[{"role": "user", "content": unique("stream")}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0, chunks[-1]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello from openai"), text


def openai_stream_cut_raises():
    stream = oa.chat.completions.create(
        model="opencode/chat", messages=[{"role": "user", "content": unique("sim:openai:cut=3")}], stream=True
    )
    try:
        for _ in stream:
            pass
    except openai.APIError as err:
        assert "stream" in str(err).lower() or "interrupt" in str(err).lower(), err
    else:
        raise AssertionError("a cut stream must raise")


def openai_errors_raise_by_status():
    try:
        oa.chat.completions.create(model="opencode/chat", messages=[{"role": "user", "content": "hi"}], n=2)
    except openai.BadRequestError as err:
        assert err.body["param"] == "n", err.body
    else:
        raise AssertionError("n=2 must be a 400")
    try:
        openai.OpenAI(base_url=f"{BASE}/v1", api_key="nope", max_retries=0).models.list()
    except openai.AuthenticationError:
        pass
    else:
        raise AssertionError("a bad key must be a 401")
    try:
        # A model of a provider that is not configured (a bare name goes to the first provider).
        oa.chat.completions.create(model="compat/some-model", messages=[{"role": "user", "content": "hi"}])
    except openai.NotFoundError as err:
        assert err.code == "model_not_found", err
    else:
        raise AssertionError("an unknown model must be a 404")
    try:
        # Every provider rate limited; the simulator asks for 2 s.
        oa.chat.completions.create(
            model="opencode/chat", messages=[{"role": "user", "content": unique("sim:any:retry_after=2")}]
        )
    except openai.RateLimitError as err:
        assert err.code == "rate_limit_exceeded" and err.response.headers["retry-after"] == "2", err
    else:
        raise AssertionError("every provider rate limited must be a 429")
    try:
        # A tenant admin asking for an owner's key, through the SDK's own request method.
        oa.post(f"{BASE}/admin/keys", body={"name": "x", "role": "owner"}, cast_to=object)
    except openai.PermissionDeniedError as err:
        assert "role `admin` may not give keys the role `owner`" in str(err), err
    else:
        raise AssertionError("an admin creating an owner's key must be a 403")


def openai_models_and_embeddings():
    ids = [m.id for m in oa.models.list()]
    assert "opencode/auto" in ids and "opencode/research" in ids and any(i.startswith("openai/") for i in ids), ids
    one = oa.models.retrieve(ids[-1])
    assert one.id == ids[-1], one
    # The SDK asks for base64 and decodes it itself.
    default = oa.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    assert len(default.data) == 2 and len(default.data[0].embedding) > 0, default
    floats = oa.embeddings.create(model="text-embedding-3-small", input="one", encoding_format="float")
    assert floats.data[0].embedding == default.data[0].embedding
    raw = oa.embeddings.with_raw_response.create(model="text-embedding-3-small", input="one", encoding_format="base64")
    packed = base64.b64decode(raw.http_response.json()["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(packed) // 4}f", packed)) == floats.data[0].embedding


def openai_responses_create_and_stream():
    response = oa.responses.create(model="opencode/chat", input=unique("hello"), instructions="be brief")
    assert response.status == "completed" and response.output_text.startswith("Hello from openai"), response
    with oa.responses.stream(model="opencode/chat", input=unique("stream")) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text and final.output_text.startswith("Hello from openai"), final
    try:
        oa.responses.create(model="opencode/chat", input="hi", previous_response_id="resp_1")
    except openai.BadRequestError as err:
        assert "no state" in str(err), err
    else:
        raise AssertionError("previous_response_id must be a 400")


def anthropic_messages_create_and_stream():
    message = an.messages.create(
        model="opencode/chat", max_tokens=256, messages=[{"role": "user", "content": unique("hello")}]
    )
    assert message.content[0].text.startswith("Hello from openai"), message
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0, message
    with an.messages.stream(
        model="opencode/chat", max_tokens=256, messages=[{"role": "user", "content": unique("stream")}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text and text.startswith("Hello from openai"), final
    try:
        an.messages.create(model="opencode/chat", messages=[{"role": "user", "content": "hi"}], max_tokens=0)
    except anthropic.BadRequestError as err:
        assert err.body["error"]["type"] == "invalid_request_error", err.body
    else:
        raise AssertionError("max_tokens 0 must be a 400")
    try:
        anthropic.Anthropic(base_url=BASE, api_key="nope", max_retries=0).messages.create(
            model="opencode/chat", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    except anthropic.AuthenticationError:
        pass
    else:
        raise AssertionError("a bad key must be a 401")
    try:
        an.messages.create(
            model="opencode/chat", max_tokens=64, messages=[{"role": "user", "content": unique("sim:any:retry_after=2")}]
        )
    except anthropic.RateLimitError as err:
        assert err.body["error"]["type"] == "rate_limit_error" and err.response.headers["retry-after"] == "2", err
    else:
        raise AssertionError("every provider rate limited must be a 429")


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def anthropic_count_tokens():
    counted = an.messages.count_tokens(
        model="opencode/chat", system="Be brief.", messages=[{"role": "user", "content": "How far is the Moon?"}]
    )
    assert 5 < counted.input_tokens < 40, counted


def images_in_both_sdks():
    # The simulator echoes each image it was shown as `[image <type>]`.
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    message = an.messages.create(
        model="opencode/chat",
        max_tokens=64,
        messages=[{"role": "user", "content": [block, {"type": "text", "text": unique("what is this?")}]}],
    )
    assert "[image image/png]" in message.content[0].text, message
    response = oa.responses.create(
        model="opencode/chat",
        input=[{"role": "user", "content": [
            {"type": "input_text", "text": unique("what is this?")},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
        ]}],
    )
    assert "[image image/png]" in response.output_text, response


def anthropic_tool_use_round_trip():
    tools = [{"name": "get_weather", "description": "now", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    question = f"Weather in {uuid.uuid4()}"
    first = an.messages.create(model="opencode/chat", max_tokens=256, tools=tools, messages=[{"role": "user", "content": question}])
    assert first.stop_reason == "tool_use", first
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.input == {"city": question}, call
    with an.messages.stream(model="opencode/chat", max_tokens=256, tools=tools, messages=[{"role": "user", "content": question}]) as stream:
        streamed = stream.get_final_message()
    assert next(b for b in streamed.content if b.type == "tool_use").input == {"city": question}, streamed
    result = f"sunny {uuid.uuid4()}"
    last = an.messages.create(
        model="opencode/chat",
        max_tokens=256,
        tools=tools,
        messages=[
            {"role": "user", "content": question},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": result}]},
        ],
    )
    assert last.content[0].text.endswith(f"Tool results: {result}"), last


def every_mode_alias_answers():
    for mode in ["chat", "search", "thinking", "research", "knowledge", "code", "auto"]:
        content = unique("print the sum of 2 and 3" if mode == "code" else "what is new")
        done = oa.chat.completions.create(model=f"opencode/{mode}", messages=[{"role": "user", "content": content}])
        assert done.object == "chat.completion" and done.choices[0].message.content, (mode, done)
        if mode != "auto":
            assert done.model_extra["opencode"]["mode"] == mode, (mode, done.model_extra["opencode"])


def seed(path, body=None, data=None, content_type="application/json"):
    """A request to the seed platform's API, as its own clients make it: (status, text). A GET
    without a body or data."""
    if body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(
        f"{BASE}{path}",
        data=data,
        headers={"authorization": f"Bearer {TOKEN}", "content-type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def seed_api_documents_and_metrics():
    # A multipart upload, as the seed's clients send one (requests' `files=`), then its status.
    boundary = uuid.uuid4().hex
    upload = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.md\"\r\n"
        f"Content-Type: text/markdown\r\n\r\n# Notes\nThe {uuid.uuid4()} ferry leaves at noon.\r\n--{boundary}--\r\n"
    ).encode()
    status, text = seed("/api/v1/documents/upload", data=upload, content_type=f"multipart/form-data; boundary={boundary}")
    uploaded = json.loads(text)
    assert status == 200 and uploaded["filename"] == "notes.md" and uploaded["status"] == "completed", text
    status, text = seed(f"/api/v1/documents/status/{uploaded['task_id']}")
    assert status == 200 and json.loads(text)["progress"] == 1.0, text
    # A tenant admin's metrics are its tenant's, in the seed's shape.
    status, text = seed("/api/v1/metrics")
    assert status == 200 and json.loads(text)["total_requests"] >= 1, text


def seed_api_chat_stream_search_and_sandbox():
    status, text = seed("/api/v1/chat", {"query": unique("hello"), "mode": "chat"})
    answer = json.loads(text)
    assert status == 200 and answer["result"].startswith("Hello from openai") and answer["mode"] == "chat", text
    status, text = seed("/api/v1/chat/stream", {"query": unique("hello"), "mode": "chat"})
    names = [line[len("event: "):] for line in text.splitlines() if line.startswith("event: ")]
    assert status == 200 and names[0] == "start" and "result" in names and names[-1] == "end", names
    status, text = seed("/api/v1/search", {"query": unique("what is new"), "max_results": 3})
    assert status == 200 and json.loads(text)["results"][0]["content"], text
    status, text = seed("/api/v1/sandbox/execute", {"code": "print(2 + 3)", "language": "python", "timeout": 10})
    ran = json.loads(text)
    assert status == 200 and ran["success"] is True and ran["stdout"] == "5\n", text
    status, text = seed("/api/v1/sandbox/execute", {"code": "echo hi", "language": "bash"})
    assert status == 422 and json.loads(text)["error_code"] == "VALIDATION_FAILED", text


for check_fn in [
    seed_api_chat_stream_search_and_sandbox,
    seed_api_documents_and_metrics,
    openai_chat_whole_and_streamed,
    openai_stream_cut_raises,
    openai_errors_raise_by_status,
    openai_models_and_embeddings,
    openai_responses_create_and_stream,
    anthropic_messages_create_and_stream,
    anthropic_tool_use_round_trip,
    images_in_both_sdks,
    anthropic_count_tokens,
    every_mode_alias_answers,
]:
    check(check_fn)
print("ok", flush=True)
sys.exit(0)
