"""CPU of decoding one streamed OpenAI answer in-process: SSE framing, JSON, the decoder and the chunk objects.

No network and no event loop: the simulator's eight-event ``chat.completion.chunk`` stream (four text deltas, the
finish, the usage event, ``[DONE]``), one read per event as a quiet upstream delivers it, is fed through
:class:`~spoon_llm.transport.SSEParser` and :class:`~spoon_llm.providers.openai._stream.ChatStreamDecoder` the
way the provider's stream loop does. Prints the best and median microseconds per answer over ``--rounds`` rounds
of ``-n`` answers: the cheapest reliable figure for the per-event work of the gateway's stream path.

Usage: python benchmarks/bench_sse_decode.py [-n 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spoon_llm.providers.openai._stream import ChatStreamDecoder  # noqa: E402
from spoon_llm.transport import SSEParser  # noqa: E402

_HEAD = (b'data: {"id":"chatcmpl-af6b58f7000000000001","object":"chat.completion.chunk","created":1796400293,'
         b'"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_5im0la7ed","choices":')
_USAGE = (b'{"prompt_tokens":1,"completion_tokens":6,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":0,'
          b'"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
          b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}')


def _delta(delta: bytes, finish: bytes = b"null") -> bytes:
    return _HEAD + b'[{"index":0,"delta":' + delta + b',"logprobs":null,"finish_reason":' + finish \
        + b'}],"usage":null}\n\n'


READS = [
    _delta(b'{"role":"assistant","content":"","refusal":null}'),
    *(_delta(b'{"content":"' + word + b'"}') for word in (b"Simulated", b" reply", b" to:", b" hi")),
    _delta(b"{}", b'"stop"'),
    _HEAD + b'[],"usage":' + _USAGE + b"}\n\n",
    b"data: [DONE]\n\n",
]


def decode_one() -> int:
    """One answer, as the provider's loop reads it; the number of chunks it yields."""
    decoder = ChatStreamDecoder("openai", "gpt-4o-mini")
    parser = SSEParser()
    count = 0
    for read in READS:
        for name, data in parser.feed(read):
            count += len(decoder.event(name, data, False))
    for name, data in parser.close():
        count += len(decoder.event(name, data, True))
    return count + len(decoder.end())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="answers per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    assert decode_one() == 5  # four text chunks and the final one
    results = []
    for _ in range(args.rounds):
        started = time.process_time()
        for _ in range(args.n):
            decode_one()
        results.append((time.process_time() - started) / args.n * 1e6)
    print(f"decode of one {len(READS)}-event OpenAI stream: best {min(results):.1f} us, "
          f"median {statistics.median(results):.1f} us CPU")


if __name__ == "__main__":
    main()
