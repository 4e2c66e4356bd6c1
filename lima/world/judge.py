"""The reference judge: the world's rubrics behind an OpenAI-compatible endpoint, registered like any judge.

`judge.local_model: reference` makes `lima.judge.judge_endpoint` serve this on loopback, so the reference
judge's verdicts go through the same client, cache, order swap, parsing, files, statistics and figures as
GPT-4's would. It reads the rendered judge prompt (the question and the response(s) between the templates'
markers), looks the question's rubric up in the world's `rubrics.jsonl`, grades each response by the
documented rules of `lima.world.grade`, and answers in the protocol's text format: `Verdict: A|B|neither`,
`Rating: Fail|Pass|Excellent` or `Score: 1-6`. A question without a rubric gets a reply that does not parse,
which the pipeline counts as a parse failure — never a guess.

The prompt holds only text, so whether a response ended on EOT comes from the generation records: the judge
indexes `{results}/responses/*.jsonl` (response text → stop reason) when it starts. A response it cannot find
there (a hand-written one) counts as finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lima.config import resolve
from lima.io import iter_jsonl
from lima.world import load_rubrics, load_world, normalise_prompt, world_config, world_root
from lima.world.grade import Grade, absolute_label, grade, helpfulness_score, pairwise_label
from lima.world.world import World

JUDGE_VERSION = "lima-world-reference-judge-v1"
_BLOCK = r"\[{name}\]\n(?P<body>.*?)\n\[End of {end}\]"


def _block(text: str, name: str, end: str) -> str | None:
    match = re.search(_BLOCK.format(name=re.escape(name), end=re.escape(end)), text, flags=re.S)
    return match.group("body") if match else None


class ReferenceJudge:
    """Grades judge prompts by rubric. `identity` names the rubrics it holds (the cache keys on it)."""

    def __init__(self, world: World, rubrics: dict[str, dict[str, Any]], margin: float = 0.25,
                 stop_reasons: dict[str, str] | None = None) -> None:
        self.world, self.rubrics, self.margin = world, rubrics, margin
        self.stop_reasons = stop_reasons or {}
        digest = hashlib.sha256(json.dumps(rubrics, sort_keys=True).encode()).hexdigest()[:12]
        self.identity = f"{JUDGE_VERSION}+{digest}"

    def _grade(self, rubric: dict[str, Any], response: str) -> Grade:
        return grade(self.world, rubric, response, self.stop_reasons.get(normalise_prompt(response), "eot"))

    def reply(self, prompt: str) -> str:
        question = _block(prompt, "Question", "question")
        if question is None:
            return "This judge only grades prompts in the pairwise, absolute and helpfulness templates."
        rubric = self.rubrics.get(normalise_prompt(question))
        if rubric is None:
            return "No rubric for this question in the world: no verdict."
        a, b = _block(prompt, "Response A", "response A"), _block(prompt, "Response B", "response B")
        if a is not None and b is not None:
            ga, gb = self._grade(rubric, a), self._grade(rubric, b)
            label = pairwise_label(ga, gb, self.margin)
            return f"Quality A {ga.quality:.2f}, B {gb.quality:.2f} ({rubric['kind']}).\nVerdict: {label}"
        response = _block(prompt, "Response", "response")
        if response is None:
            return "No response block found: no verdict."
        g = self._grade(rubric, response)
        if "Score: N" in prompt:
            return f"Quality {g.quality:.2f} ({rubric['kind']}).\nScore: {helpfulness_score(g)}"
        return f"Quality {g.quality:.2f} ({rubric['kind']}).\nRating: {absolute_label(g).capitalize()}"


def _handler(judge: ReferenceJudge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:   # quiet: the client logs what matters
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": judge.identity, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompt = "\n".join(str(m.get("content", "")) for m in body["messages"] if m.get("role") == "user")
            except (ValueError, KeyError, TypeError) as err:
                self._send(400, {"error": {"message": f"bad request: {err}"}})
                return
            text = judge.reply(prompt)
            self._send(200, {"id": "ref-" + hashlib.sha1(prompt.encode()).hexdigest()[:12],
                             "object": "chat.completion", "created": int(time.time()),
                             "model": body.get("model", judge.identity), "system_fingerprint": judge.identity,
                             "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                          "message": {"role": "assistant", "content": text}}],
                             "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})

    return Handler


def reference_judge(cfg: dict[str, Any]) -> ReferenceJudge:
    rubrics_file = world_root(cfg) / "rubrics.jsonl"
    if not rubrics_file.exists():
        raise FileNotFoundError(f"judge.local_model is 'reference' but {rubrics_file} does not exist: the "
                                f"reference judge needs the LIMA world (world.enabled, notebook 01)")
    stops: dict[str, str] = {}
    for path in sorted((resolve(cfg["paths"]["results"]) / "responses").glob("*.jsonl")):
        for row in iter_jsonl(path):
            if isinstance(row.get("response"), str) and row.get("stop_reason"):
                stops[normalise_prompt(row["response"])] = row["stop_reason"]
    return ReferenceJudge(load_world(cfg), load_rubrics(cfg), world_config(cfg).pairwise_margin, stops)


@contextlib.contextmanager
def serve_reference_judge(cfg: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Serve the reference judge on 127.0.0.1 (a free port) for the block; yields (base_url, identity)."""
    judge = reference_judge(cfg)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(judge))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", judge.identity
    finally:
        server.shutdown()
        server.server_close()
