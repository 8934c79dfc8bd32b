#!/usr/bin/env python3
"""The client of client.py (written from docs/PROTOCOL.md alone) against the real zrelay.

Run by ctest with $ZRELAY, $ZPUB and $ZSUB naming the built binaries. Each case prints PASS or FAIL with
what differed; the last line is 'N passed, N failed' and the exit status is 1 if any case failed.
Every wait has a deadline; nothing synchronizes on a sleep.
"""

import base64
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import namedtuple

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import zmq  # noqa: E402

from client import (  # noqa: E402
    KIND_ACK, KIND_EXPECT, KIND_NACK, KIND_NAMES, REASON_MALFORMED, REASON_TOO_LARGE,
    REASON_UNSUPPORTED_VERSION, AckedPublisher, DecodingSubscriber, decode_reply, describe, encode_body,
    encode_header, new_publisher_id)

# The relay runs with small limits so that the error rows can reach them with small frames.
MAX_MSG = 1000
MAX_TOPIC = 512
WAIT = 5.0  # deadline of one wait for a reply or a delivery, in seconds


class Mismatch(Exception):
    """What the relay did differs from what the document says."""


def expect(cond, what):
    if not cond:
        raise Mismatch(what)


def deadline(seconds=WAIT):
    return time.monotonic() + seconds


class Relay:
    """The real zrelay on ephemeral loopback ports; the endpoints come from its ready line."""

    READY = re.compile(r"^zrelay: ready pub=(\S+) sub=(\S+) ack=(\S+) control=(\S+)$")

    def __init__(self, binary, *args):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [binary, "--pub-bind", "tcp://127.0.0.1:*", "--sub-bind", "tcp://127.0.0.1:*",
             "--ack-bind", "tcp://127.0.0.1:*", "--control-bind", "tcp://127.0.0.1:*", "-v", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.err)
        line = b""
        end = deadline(10)
        while not line.endswith(b"\n"):
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.kill()
                raise RuntimeError(f"zrelay printed no ready line within 10 s; stderr: {self.stderr()!r}")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                self.kill()
                raise RuntimeError(f"zrelay exited before its ready line; stderr: {self.stderr()!r}")
            line += chunk
        m = self.READY.match(line.decode().rstrip("\n"))
        if not m or "*" in line.decode():
            self.kill()
            raise RuntimeError(f"unexpected ready line from zrelay: {line!r}")
        self.pub, self.sub, self.ack, self.control = m.groups()

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


class Env:
    def __init__(self, ctx, relay, zpub, zsub):
        self.ctx, self.relay, self.zpub, self.zsub = ctx, relay, zpub, zsub

    def subscriber(self, prefix):
        """A decoding subscriber on topics starting with prefix, whose subscription is in effect.

        Synchronized on a message: an acked probe on prefix+'sync' is sent until it arrives.
        """
        sub = DecodingSubscriber(self.ctx, self.relay.sub, [prefix])
        probe = AckedPublisher(self.ctx, self.relay.ack)
        end = deadline()
        try:
            while True:
                expect(time.monotonic() < end, f"the subscription to {prefix!r} took no effect within {WAIT} s")
                probe.publish(prefix + b"sync", [b"probe"])
                recs = sub.recv(0.05) or []
                probe.poll(0)
                if any(r.topic == prefix + b"sync" for r in recs):
                    break
            probe.drain(deadline())
        finally:
            probe.close()
        sub.ignore.add(prefix + b"sync")  # probes still on the way
        return sub


def check_acks_and_expects(replies):
    """Reply frame: an ACK or EXPECT has count 0, reason 0 and no text."""
    bad = [r for r in replies if r.kind in (KIND_ACK, KIND_EXPECT) and (r.count or r.reason or r.text)]
    expect(not bad, "ACK or EXPECT with a count, reason or text: " + "; ".join(describe(r) for r in bad))


def records_on(recs, topic):
    return [r for r in recs if r.topic == topic]


# --- cases -------------------------------------------------------------------------------------------

CASES = []


def case(fn):
    CASES.append((fn.__name__, fn))
    return fn


@case
def acked_stream_with_a_window_of_many_batches(env):
    """4000 messages on 3 topics, batches of 1-20 records, up to 64 batches in flight."""
    sub = env.subscriber(b"stream.")
    pub = AckedPublisher(env.ctx, env.relay.ack)
    rng = random.Random(8)
    topics = [b"stream.a", b"stream.b", b"stream.c"]
    total, window = 4000, 64
    sent = {t: [] for t in topics}
    batches, max_inflight, got = [], 0, []
    n = 0
    end = deadline(30)
    while n < total or pub.inflight:
        expect(time.monotonic() < end, f"stream not acknowledged within 30 s (acked {pub.acked} of {total})")
        while n < total and len(pub.inflight) < window:
            t = rng.choice(topics)
            k = min(rng.randint(1, 20), total - n)
            payloads = [b"%s %d" % (t, n + i) for i in range(k)]
            batches.append(pub.publish(t, payloads))
            sent[t].extend(payloads)
            n += k
        max_inflight = max(max_inflight, len(pub.inflight))
        pub.poll(0.01)
        while True:
            recs = sub.recv(0)
            if recs is None:
                break
            got.extend(recs)
    ends = {b.seq + b.count - 1 for b in batches}
    acks = [r for r in pub.replies if r.kind == KIND_ACK]
    expect(not [r for r in pub.replies if r.kind != KIND_ACK],
           "replies other than ACK: " + "; ".join(describe(r) for r in pub.replies if r.kind != KIND_ACK))
    expect(pub.acked == total, f"last ACK {pub.acked}, sent {total}")
    check_acks_and_expects(pub.replies)
    expect(all(a.seq in ends for a in acks), "an ACK seq that ends no batch: "
           + ", ".join(str(a.seq) for a in acks if a.seq not in ends))
    expect(all(x.seq < y.seq for x, y in zip(acks, acks[1:])), "ACK seqs not increasing")
    expect(max_inflight >= 10, f"at most {max_inflight} batches were in flight")
    # Everything was acked, hence handed to XPUB: the rest is on its way to the subscriber.
    have = len(got)
    got += sub.recv_until(lambda g: have + len(g) >= total, deadline())
    for t in topics:
        recs = records_on(got, t)
        expect([r.payload for r in recs] == sent[t],
               f"{t!r}: {len(recs)} records received, {len(sent[t])} sent, or out of order")
        expect([r.topic_seq for r in recs] == list(range(1, len(recs) + 1)), f"{t!r}: topic seqs have holes")
        expect(all(r.publisher == pub.publisher for r in recs), f"{t!r}: a record with another publisher id")
    expect(sorted(r.seq for r in got) == list(range(1, total + 1)),
           "publisher seqs received are not 1..N")
    expect(sub.missing == 0 and sub.repeated == 0, f"subscriber counted missing={sub.missing} repeated={sub.repeated}")
    expect(sub.undecodable == 0 and not sub.skipped_versions, "a batch the subscriber could not decode")
    pub.close()
    sub.close()
    return f"{total} messages in {len(batches)} batches, {len(acks)} cumulative ACKs, up to {max_inflight} in flight"


@case
def plain_messages_from_a_pub_reach_the_decoding_subscriber(env):
    sub = env.subscriber(b"plain.")
    pub = env.ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(env.relay.pub)
    # The relay's XSUB passes the subscription on to this PUB: probe until it is in effect.
    end = deadline()
    while True:
        expect(time.monotonic() < end, "the relay's XSUB never passed the subscription on to a PUB")
        pub.send_multipart([b"plain.pubsync", b"probe"])
        recs = sub.recv(0.05) or []
        if any(r.topic == b"plain.pubsync" for r in recs):
            break
    sub.ignore.add(b"plain.pubsync")
    header = encode_header(1, 7, 1, 1, 1)
    messages = [  # (frames sent, (topic, payload) decoded) by "Decoding as a plain subscriber"
        ([b"plain.two", b"hello"], [(b"plain.two", b"hello")]),
        ([b"plain.two", b""], [(b"plain.two", b"")]),
        ([b"plain.two", header], [(b"plain.two", header)]),  # looks like a header, but a batch has 3 frames
        ([b"plain.one"], [(b"", b"plain.one")]),  # one frame: all payload, no topic
        ([b"plain.three", b"x", b"y"], [(b"plain.three", b"xy")]),  # more than 2: the frames after the topic, joined
        ([b"plain.three", b"ZR\x01", b"y"], [(b"plain.three", b"ZR\x01y")]),  # 3 bytes: too short for a header
        ([b"plain.four", b"a", b"b", b"c"], [(b"plain.four", b"abc")]),
        ([b"plain.64"] + [b"%d," % i for i in range(63)], [(b"plain.64", b"".join(b"%d," % i for i in range(63)))]),
        ([b"plain.65"] + [b"%d," % i for i in range(64)], []),  # over 64 frames: the relay forwards nothing
    ]
    for frames, _ in messages:
        pub.send_multipart(frames)
    pub.send_multipart([b"plain.end", b"."])
    got = sub.recv_until(lambda g: any(r.topic == b"plain.end" for r in g), deadline())
    got = [(r.topic, r.payload) for r in got if r.topic != b"plain.end"]
    want = [w for _, ws in messages for w in ws]
    expect(got == want, f"decoded {got!r}, document says {want!r}")
    pub.close()
    sub.close()
    return f"{len(messages)} plain messages of 1 to 65 frames decoded as the document says"


class LineReader:
    """Lines of a child's stdout, each read with a deadline."""

    def __init__(self, pipe):
        self.fd, self.buf = pipe.fileno(), b""

    def line(self, until):
        while b"\n" not in self.buf:
            left = until - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line


def zsub_record(line):
    """(topic, payload, publisher, topic seq) from a line of zsub --json."""
    j = json.loads(line)

    def field(name):
        return j[name].encode() if name in j else base64.b64decode(j[name + "_base64"])

    publisher = int(j["publisher"], 16) if "publisher" in j else None
    return field("topic"), field("payload"), publisher, j.get("seq")


@case
def zsub_decodes_what_the_document_says(env):
    """zsub --json and the client's decoding subscriber read one stream: every record the same."""
    sub = env.subscriber(b"cmp.")
    zsub = subprocess.Popen([env.zsub, "-t", "cmp.", "--json", "--sub-connect", env.relay.sub, "-W", "20"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = LineReader(zsub.stdout)
    probe = AckedPublisher(env.ctx, env.relay.ack)
    pub = env.ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(env.relay.pub)
    try:
        end = deadline()
        while True:  # until zsub's subscription is in effect
            expect(time.monotonic() < end, f"zsub printed no probe within {WAIT} s")
            probe.publish(b"cmp.zsubsync", [b"probe"])
            probe.poll(0)
            line = out.line(time.monotonic() + 0.05)
            if line and zsub_record(line)[0] == b"cmp.zsubsync":
                break
        end = deadline()
        while True:  # until the relay's XSUB has passed the subscription on to this PUB
            expect(time.monotonic() < end, "the relay's XSUB never passed the subscription on to a PUB")
            pub.send_multipart([b"cmp.pubsync", b"probe"])
            if any(r.topic == b"cmp.pubsync" for r in sub.recv(0.05) or []):
                break
        sub.ignore |= {b"cmp.zsubsync", b"cmp.pubsync"}
        pid = new_publisher_id()
        t = b"cmp.batch"
        stream = [
            [b"cmp.two", b"hello"], [b"cmp.one"], [b"cmp.three", b"x", b"y"],
            [b"cmp.three", b"ZR\x01", b"y"], [b"cmp.three", b"ZR\x01\x02" + bytes(36), b"y"],
            [b"cmp.many"] + [b"%d," % i for i in range(63)], [b"cmp.many"] + [b"%d," % i for i in range(64)],
            [t, encode_header(3, pid, 1, 1, 0), encode_body([b"a", b"", b"c"])],
            [t, encode_header(1, pid, 4, 4, 0, version=2), encode_body([b"v2"])],
            [t, encode_header(1, pid, 4, 4, 0)[:39], encode_body([b"short header"])],
            [t, encode_header(0, pid, 4, 4, 0), b""],
            [t, encode_header(3, pid, 4, 4, 0), encode_body([b"d", b"e"])],  # cut short
            [t, encode_header(1, pid, 7, 7, 0), encode_body([b"f"]) + b"\0"],  # a byte after the last record
            [t, encode_header(1, pid, 10, 10, 0), encode_body([b"after a gap"])],
        ]
        for frames in stream:
            pub.send_multipart(frames)
        pub.send_multipart([b"cmp.end", b"."])
        mine = sub.recv_until(lambda g: any(r.topic == b"cmp.end" for r in g), deadline())
        mine = [(r.topic, r.payload, r.publisher, r.topic_seq) for r in mine]
        theirs = []
        end = deadline()
        while not theirs or theirs[-1][0] != b"cmp.end":
            line = out.line(end)
            expect(line is not None, f"zsub printed {len(theirs)} records and then nothing for {WAIT} s")
            rec = zsub_record(line)
            if rec[0] not in (b"cmp.zsubsync", b"cmp.pubsync"):
                theirs.append(rec)
        expect(mine == theirs, "the document's decoding and zsub's differ:\n  client: "
               + "\n          ".join(map(repr, mine)) + "\n  zsub:   " + "\n          ".join(map(repr, theirs)))
        expect(mine and mine[-1][0] == b"cmp.end", "the client did not decode the end marker")
    finally:
        zsub.terminate()
        try:
            zsub.wait(timeout=10)
        except subprocess.TimeoutExpired:
            zsub.kill()
            zsub.wait()
        pub.close()
        probe.close()
        sub.close()
    expect(zsub.returncode == 0, f"zsub exited {zsub.returncode} on SIGTERM: {zsub.stderr.read().decode()!r}")
    return f"{len(stream)} messages of every shape, {len(mine) - 1} records, the same from both"


def run_zpub(env, args, lines):
    proc = subprocess.run([env.zpub, *args], input=b"".join(l + b"\n" for l in lines),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    expect(proc.returncode == 0, f"zpub {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()!r}")


@case
def zpub_no_ack_batches_and_plain_reach_the_decoding_subscriber(env):
    sub = env.subscriber(b"noack.")
    lines = [b"line %d %s" % (i, b"x" * (i % 50)) for i in range(2000)]
    for topic, extra, batched in ((b"noack.batch", [], True), (b"noack.plain", ["--plain"], False)):
        run_zpub(env, ["-t", topic.decode(), "--no-ack", "--pub-connect", env.relay.pub, *extra], lines)
        got = sub.recv_until(lambda g: len(records_on(g, topic)) >= len(lines), deadline())
        recs = records_on(got, topic)
        expect([r.payload for r in recs] == lines,
               f"{topic!r}: {len(recs)} of {len(lines)} lines decoded, or not in order")
        if batched:
            expect(all(r.publisher for r in recs), f"{topic!r}: a record without a publisher id (not a batch)")
            expect([r.topic_seq for r in recs] == list(range(1, len(lines) + 1)),
                   f"{topic!r}: topic seqs have holes")
        else:
            expect(all(r.publisher is None for r in recs), f"{topic!r}: --plain gave batches")
    sub.close()
    return f"{len(lines)} lines each from zpub --no-ack and --no-ack --plain"


def wait_replies(pub, n, why):
    """Poll pub until it has n replies in all; returns them."""
    end = deadline()
    while len(pub.replies) < n:
        expect(time.monotonic() < end, f"{why}: {len(pub.replies)} replies of {n} within {WAIT} s: "
               + "; ".join(describe(r) for r in pub.replies))
        pub.poll(0.05)
    return pub.replies


@case
def a_resend_of_an_acked_batch_is_reacked_not_republished(env):
    sub = env.subscriber(b"resend.")
    pub = AckedPublisher(env.ctx, env.relay.ack)
    first = pub.publish(b"resend.t", [b"a", b"b", b"c"])
    wait_replies(pub, 1, "first batch")
    expect(pub.replies[0].kind == KIND_ACK and pub.replies[0].seq == 3, f"first batch: {describe(pub.replies[0])}")
    pub.sock.send_multipart(first.frames)  # the same bytes again, as after an ack timeout
    wait_replies(pub, 2, "the resend")
    expect(pub.replies[1].kind == KIND_ACK and pub.replies[1].seq == 3, f"the resend: {describe(pub.replies[1])}")
    pub.publish(b"resend.t", [b"d"])
    wait_replies(pub, 3, "the batch after")
    expect(pub.replies[2].kind == KIND_ACK and pub.replies[2].seq == 4, f"the batch after: {describe(pub.replies[2])}")
    check_acks_and_expects(pub.replies)
    got = sub.recv_until(lambda g: any(r.payload == b"d" for r in g), deadline())
    recs = [(r.seq, r.payload) for r in records_on(got, b"resend.t")]
    expect(recs == [(1, b"a"), (2, b"b"), (3, b"c"), (4, b"d")], f"subscriber got {recs!r}")
    pub.close()
    sub.close()
    return "ACK 3 twice, delivered once"


@case
def a_gap_gets_expect_and_the_resend_fills_it(env, past_gap=1):
    # past_gap: batches sent after the lost one, each before the EXPECT is read.
    sub = env.subscriber(b"gap.")
    pub = AckedPublisher(env.ctx, env.relay.ack)
    pub.publish(b"gap.t", [b"1", b"2"])
    wait_replies(pub, 1, "first batch")
    expect(pub.acked == 2, f"first batch: {describe(pub.replies[0])}")
    lost = pub.build(b"gap.t", [b"3", b"4"])
    pub.lose(lost)  # "sent", and lost on the way (e.g. in a reconnect)
    after = [pub.publish(b"gap.t", [b"%d" % (5 + i)]) for i in range(past_gap)]
    last = after[-1].seq
    end = deadline()
    while pub.acked < last:
        expect(time.monotonic() < end, "no ACK after the resend: " + "; ".join(describe(r) for r in pub.replies))
        pub.poll(0.05)
    # One EXPECT 3, then cumulative ACKs (one per burst the relay read) up to the last seq.
    kinds = [(KIND_NAMES[r.kind], r.seq) for r in pub.replies[1:]]
    ends = {3 + 2 - 1} | {b.seq for b in after}
    expect(kinds[0] == ("EXPECT", 3) and kinds[-1] == ("ACK", last)
           and all(k == "ACK" and seq in ends for k, seq in kinds[1:]),
           f"replies after the gap {kinds}, document says EXPECT 3 then ACKs up to {last}")
    expect(pub.resent_batches == 1 + past_gap, f"{pub.resent_batches} batches resent")
    check_acks_and_expects(pub.replies)
    got = sub.recv_until(lambda g: any(r.seq == last for r in g), deadline())
    recs = [(r.topic_seq, r.payload) for r in records_on(got, b"gap.t")]
    expect(recs == [(i, b"%d" % i) for i in range(1, last + 1)], f"subscriber got {recs!r}")
    expect(sub.missing == 0 and sub.repeated == 0, f"subscriber counted missing={sub.missing} repeated={sub.repeated}")
    pub.close()
    sub.close()
    return f"EXPECT 3, resent {pub.resent_batches} batches, ACK {last}"


@case
def a_burst_behind_a_gap_gets_one_expect(env):
    return a_gap_gets_expect_and_the_resend_fills_it(env, past_gap=4)


# --- "Errors a plain client should expect", one row each ------------------------------------------
#
# A row sends steps of raw frames on one DEALER, as publisher `pid` (a fresh id per row), and
# checks every reply of each step. After the last step a fence (a valid batch from another fresh
# publisher on the row's topic) is sent: its ACK proves no other reply was due, its delivery that
# the subscriber saw everything the row caused, which must be exactly `delivered`.
#
# Reply fields: kind, reason, count, seq as numbers (None: not checked), publisher "row" (the row's
# id) or a number, text a regular expression matched in full (None: not checked).

Reply_ = namedtuple("Reply_", "kind reason count seq publisher text")
Reply_.__new__.__defaults__ = (None, None, None, "row", None)
Step = namedtuple("Step", "frames replies")
Row = namedtuple("Row", "name steps delivered")
Row.__new__.__defaults__ = ((),)


def nack(reason, count=None, seq=None, publisher="row", text=None):
    return Reply_(KIND_NACK, reason, count, seq, publisher, text)


def ack(seq, publisher="row"):
    return Reply_(KIND_ACK, 0, 0, seq, publisher, "")


def batch(topic, pid, seq, payloads, topic_seq=None, floor=None, count=None, **header):
    """Frames of a batch, valid unless a field is overridden."""
    return [topic, encode_header(len(payloads) if count is None else count, pid, seq,
                                 seq if topic_seq is None else topic_seq, seq if floor is None else floor,
                                 **header), encode_body(payloads)]


def header_with(pid, magic=b"ZR", size=40, kind=1, count=1):
    h = bytearray(encode_header(count, pid, 1, 1, 1, kind=kind))
    h[0:2] = magic
    return bytes(h[:size]) + b"\0" * max(0, size - 40)


MALFORMED, TOO_LARGE = REASON_MALFORMED, REASON_TOO_LARGE
FRAMES = r"expected 3 frames \[topic\]\[header\]\[body\], got "
TOO_LARGE_TEXT = rf"a message of \d+ bytes exceeds the limit of {MAX_MSG}"
# Where the document names a field of the reply (publisher, seq, count) the row checks it; a
# header that could not be read gives publisher 0 and nothing of it is believed.
ERROR_ROWS = [
    # other than 3 frames after the routing id (a header in frame 2 is read for publisher and seq)
    Row("frames_1", [Step(lambda t, p: [batch(t, p, 1, [b"x"])[1]],
                          [nack(MALFORMED, publisher=0, seq=0, text=FRAMES + "1")])]),
    Row("frames_2", [Step(lambda t, p: batch(t, p, 1, [b"x"])[:2],
                          [nack(MALFORMED, seq=1, text=FRAMES + "2")])]),
    Row("frames_4", [Step(lambda t, p: batch(t, p, 1, [b"x"]) + [b"extra"],
                          [nack(MALFORMED, seq=1, text=FRAMES + "4")])]),
    # a header not starting with "ZR", the wrong size, kind != 1, count 0
    Row("bad_magic", [Step(lambda t, p: [t, header_with(p, magic=b"XR"), encode_body([b"x"])],
                           [nack(MALFORMED, publisher=0, seq=0, text=r"header: .*")])]),
    # (of a header of the wrong size the document does not say whether publisher and seq are read)
    Row("header_39", [Step(lambda t, p: [t, header_with(p, size=39), encode_body([b"x"])],
                           [nack(MALFORMED, publisher=None, text=r"header: .*")])]),
    Row("header_41", [Step(lambda t, p: [t, header_with(p, size=41), encode_body([b"x"])],
                           [nack(MALFORMED, publisher=None, text=r"header: .*")])]),
    Row("kind_2", [Step(lambda t, p: [t, header_with(p, kind=2), encode_body([b"x"])],
                        [nack(MALFORMED, seq=1, text=r"header: .*")])]),
    Row("count_0", [Step(lambda t, p: batch(t, p, 1, [], count=0), [nack(MALFORMED, seq=1, text=r"header: .*")])]),
    # a header with version != 1: the publisher, seq and count read from the header
    Row("version_2", [Step(lambda t, p: batch(t, p, 7, [b"x", b"y"], version=2),
                           [nack(REASON_UNSUPPORTED_VERSION, count=2, seq=7)])]),
    # publisher id or seq 0
    Row("publisher_0", [Step(lambda t, p: batch(t, 0, 1, [b"x", b"y"]),
                             [nack(MALFORMED, count=2, publisher=0, seq=1)])]),
    Row("seq_0", [Step(lambda t, p: batch(t, p, 0, [b"x", b"y"], topic_seq=1, floor=1),
                       [nack(MALFORMED, count=2, seq=0)])]),
    # a body that does not match count: the batch is refused whole, and next stays where it was,
    # so the same seq is accepted after
    Row("body_short", [Step(lambda t, p: batch(t, p, 1, [b"x"], count=2),
                            [nack(MALFORMED, count=2, seq=1, text=r"body: .*")]),
                       Step(lambda t, p: batch(t, p, 1, [b"x", b"y"]), [ack(2)])],
        delivered=[(1, 1, b"x"), (2, 2, b"y")]),
    Row("body_trailing", [Step(lambda t, p: [t, encode_header(1, p, 1, 1, 1), encode_body([b"x"]) + b"\0"],
                               [nack(MALFORMED, count=1, seq=1, text=r"body: .*")]),
                          Step(lambda t, p: batch(t, p, 1, [b"z"]), [ack(1)])],
        delivered=[(1, 1, b"z")]),
    # a record over --max-msg-size: NACK too large for each run of such records (its first seq and
    # length), then the ACK; the other records are forwarded with the seqs they had
    Row("record_too_large", [Step(lambda t, p: batch(t, p, 1, [b"a", b"B" * (MAX_MSG + 1), b"c"]),
                                  [nack(TOO_LARGE, count=1, seq=2,
                                        text=rf"a message of {MAX_MSG + 1} bytes exceeds the limit of {MAX_MSG}"),
                                   ack(3)])],
        delivered=[(1, 1, b"a"), (3, 3, b"c")]),
    Row("two_runs_too_large", [Step(lambda t, p: batch(t, p, 1, [b"B" * (MAX_MSG + 1), b"b" * MAX_MSG,
                                                                 b"C" * (MAX_MSG + 5), b"D" * (MAX_MSG + 9), b"d"]),
                                    [nack(TOO_LARGE, count=1, seq=1,
                                          text=rf"a message of {MAX_MSG + 1} bytes exceeds the limit of {MAX_MSG}"),
                                     nack(TOO_LARGE, count=2, seq=3,
                                          text=rf"2 messages of up to {MAX_MSG + 9} bytes exceed the limit of {MAX_MSG}"),
                                     ack(5)])],
        delivered=[(2, 2, b"b" * MAX_MSG), (5, 5, b"d")]),
    # more than 64 runs of such records: the whole batch refused with one NACK, then the ACK
    Row("too_many_runs", [Step(lambda t, p: batch(t, p, 1, [b"a", b"B" * (MAX_MSG + 1)] * 65),
                               [nack(TOO_LARGE, count=130, seq=1,
                                     text=rf"65 messages of up to {MAX_MSG + 1} bytes exceed the limit of {MAX_MSG} "
                                          r"in 65 runs \(more than 64 runs in one batch: the whole batch of 130 "
                                          r"messages is refused\)"),
                                ack(130)])]),
    # the ack floor: set (at least 1) and at most the batch's seq, or the batch changes nothing
    Row("floor_0", [Step(lambda t, p: batch(t, p, 1, [b"x"], floor=0),
                         [nack(MALFORMED, count=1, seq=1, text=r"the ack floor must be set on the ack socket.*")]),
                    Step(lambda t, p: batch(t, p, 1, [b"y"]), [ack(1)])],
        delivered=[(1, 1, b"y")]),
    Row("floor_above_seq", [Step(lambda t, p: batch(t, p, 12, [b"x"], floor=100),
                                 [nack(MALFORMED, count=1, seq=12,
                                       text=r"ack floor 100 is above the batch's sequence 12.*")]),
                            Step(lambda t, p: batch(t, p, 12, [b"y"]), [ack(12)])],
        delivered=[(12, 12, b"y")]),
    Row("floor_inside_first_batch", [Step(lambda t, p: batch(t, p, 1, [b"a", b"b", b"c"], floor=2),
                                          [nack(MALFORMED, count=3, seq=1,
                                                text=r"ack floor 2 is above the batch's sequence 1.*")]),
                                     Step(lambda t, p: batch(t, p, 1, [b"a", b"b", b"c"]), [ack(3)])],
        delivered=[(1, 1, b"a"), (2, 2, b"b"), (3, 3, b"c")]),
    # topic seq + count past 2^64 - 1: changes nothing, so the same seq is accepted after
    Row("topic_seq_wraps", [Step(lambda t, p: batch(t, p, 1, [b"x", b"y"], topic_seq=2**64 - 1),
                                 [nack(MALFORMED, count=2, seq=1,
                                       text=r"topic sequence 18446744073709551615 \+ count 2 runs past the last "
                                            r"sequence number")]),
                            Step(lambda t, p: batch(t, p, 1, [b"z"], topic_seq=1), [ack(1)])],
        delivered=[(1, 1, b"z")]),
    # an empty topic and topic seq 0: refused for good, and acked past
    Row("empty_topic", [Step(lambda t, p: batch(b"", p, 1, [b"x"]),
                             [nack(MALFORMED, count=1, seq=1, text="the topic must not be empty on the ack socket"),
                              ack(1)])]),
    Row("topic_seq_0", [Step(lambda t, p: batch(t, p, 1, [b"x", b"y"], topic_seq=0),
                             [nack(MALFORMED, count=2, seq=1,
                                   text=r"the topic sequence must not be zero on the ack socket.*"),
                              ack(2)]),
                        Step(lambda t, p: batch(t, p, 3, [b"z"], topic_seq=1, floor=3), [ack(3)])],
        delivered=[(3, 1, b"z")]),
    # a topic frame over --max-topic: NACK too large for the whole batch, then an ACK past it
    Row("topic_too_large", [Step(lambda t, p: batch(t + b"." * (MAX_TOPIC + 1 - len(t)), p, 1, [b"x", b"y"]),
                                 [nack(TOO_LARGE, count=2, seq=1,
                                       text=rf"a topic of {MAX_TOPIC + 1} bytes exceeds the limit of {MAX_TOPIC}"),
                                  ack(2)]),
                            Step(lambda t, p: batch(t, p, 3, [b"z"], topic_seq=1, floor=3), [ack(3)])],
        delivered=[(3, 1, b"z")]),
]


def check_reply(got, want, pid):
    """What differs between a reply and its expectation, or None."""
    diffs = []
    for field in ("kind", "reason", "count", "seq"):
        w = getattr(want, field)
        if w is not None and getattr(got, field) != w:
            diffs.append(f"{field} {getattr(got, field)} (want {w})")
    wp = pid if want.publisher == "row" else want.publisher
    if wp is not None and got.publisher != wp:
        diffs.append(f"publisher {got.publisher:#x} (want {wp:#x})")
    if want.text is not None and not re.fullmatch(want.text, got.text):
        diffs.append(f"text {got.text!r} (want /{want.text}/)")
    return ", ".join(diffs) or None


def run_error_row(env, sub, row):
    topic = b"err." + row.name.encode()
    pid = new_publisher_id()
    dealer = env.ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(env.relay.ack)
    try:
        replies = []

        def read_one(why):
            expect(dealer.poll(int(WAIT * 1000)), f"{why}: no reply within {WAIT} s")
            frames = dealer.recv_multipart()
            expect(len(frames) == 1, f"{why}: a reply of {len(frames)} frames")
            r = decode_reply(frames[0])
            replies.append(r)
            return r

        for i, step in enumerate(row.steps):
            dealer.send_multipart(step.frames(topic, pid))
            for j, want in enumerate(step.replies):
                r = read_one(f"step {i + 1}, reply {j + 1} (want {KIND_NAMES[want.kind]})")
                diff = check_reply(r, want, pid)
                expect(diff is None, f"step {i + 1}, reply {j + 1}: {describe(r)}: {diff}")
        fence = new_publisher_id()
        dealer.send_multipart(batch(topic, fence, 1, [b"fence"]))
        r = read_one("the fence")
        expect(r.kind == KIND_ACK and r.publisher == fence and r.seq == 1,
               f"a reply the document does not give, before the fence's ACK: {describe(r)}")
        check_acks_and_expects([r])
        got = sub.recv_until(lambda g: any(x.publisher == fence for x in g), deadline())
        expect(any(x.publisher == fence for x in got), "the fence batch was not delivered")
        seen = [(x.seq, x.topic_seq, x.payload) for x in records_on(got, topic) if x.publisher == pid]
        expect(seen == list(row.delivered), f"delivered {seen!r}, document says {list(row.delivered)!r}")
        return "; ".join(describe(r) for r in replies[:-1])
    finally:
        dealer.close()


def error_cases():
    for row in ERROR_ROWS:
        def run(env, row=row):
            sub = env.subscriber(b"err.")
            try:
                return run_error_row(env, sub, row)
            finally:
                sub.close()
        yield f"error row {row.name}", run


def main():
    zrelay, zpub, zsub = os.environ.get("ZRELAY"), os.environ.get("ZPUB"), os.environ.get("ZSUB")
    for name, path in (("ZRELAY", zrelay), ("ZPUB", zpub), ("ZSUB", zsub)):
        if not path or not os.access(path, os.X_OK):
            print(f"FAIL: ${name} must name the built binary (ctest sets it)", file=sys.stderr)
            return 1
    started = time.monotonic()
    ctx = zmq.Context()
    relay = Relay(zrelay, "--max-msg-size", str(MAX_MSG), "--max-topic", str(MAX_TOPIC))
    env = Env(ctx, relay, zpub, zsub)
    passed = failed = 0
    try:
        for name, fn in CASES + list(error_cases()):
            t0 = time.monotonic()
            try:
                what = fn(env)
                passed += 1
                print(f"PASS {name} ({time.monotonic() - t0:.2f} s){': ' + what if what else ''}", flush=True)
            except Mismatch as e:
                failed += 1
                print(f"FAIL {name}: {e}", flush=True)
            except Exception:  # a bug in the client or the test counts as a failure too
                failed += 1
                print(f"FAIL {name}: {traceback.format_exc()}", flush=True)
            if relay.proc.poll() is not None:
                print(f"FAIL zrelay exited with status {relay.proc.returncode}", flush=True)
                failed += 1
                break
    finally:
        status = relay.stop()
        ctx.destroy(linger=0)
    err = relay.stderr()
    if status != 0:
        failed += 1
        print(f"FAIL zrelay stopped with status {status}; its stderr ends: {err[-2000:]!r}")
    elif "zrelay: final " not in err:
        failed += 1
        print("FAIL zrelay printed no final counters line")
    else:
        print(err[err.rindex("zrelay: final "):].splitlines()[0])
    if failed:
        print("zrelay stderr (last 40 lines):\n" + "\n".join(err.splitlines()[-40:]))
    print(f"{passed} passed, {failed} failed ({time.monotonic() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
