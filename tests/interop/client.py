"""A zrelay client written from docs/PROTOCOL.md alone: an acked publisher and a decoding subscriber.

Nothing here is taken from the C++ code. Every constant and rule comes from the document, and the
section it comes from is named next to it, so that a test failure points at a line of the document
(or at the relay). Python 3 standard library and pyzmq only.
"""

import secrets
import struct
import time
from collections import namedtuple

import zmq

# "Every zrelay-specific frame starts with the magic bytes 5A 52, then a version byte (1), then a
# kind byte." All integers are unsigned and big-endian.
MAGIC = b"ZR"
VERSION = 1
KIND_BATCH = 1
KIND_ACK = 2
KIND_NACK = 3
KIND_EXPECT = 4
KIND_NAMES = {KIND_ACK: "ACK", KIND_NACK: "NACK", KIND_EXPECT: "EXPECT"}

# Reply frame, reason (NACK only).
REASON_TOO_LARGE = 1
REASON_MALFORMED = 2
REASON_UNSUPPORTED_VERSION = 3
REASON_OVERLOADED = 4
REASON_NOT_ALLOWED = 5

# Header frame (40 bytes): magic, version, kind, count, publisher, seq, topic seq, ack floor.
HEADER = struct.Struct(">2sBBIQQQQ")
assert HEADER.size == 40
# Reply frame (25 bytes + text): magic, version, kind, count, publisher, seq, reason, then text.
REPLY = struct.Struct(">2sBBIQQB")
assert REPLY.size == 25
# Body frame: count records of [4-byte length L][L bytes].
RECORD_LEN = struct.Struct(">I")
# Messages as subscribers see them: the relay forwards no message of more than 64 frames.
MAX_FRAMES = 64


def encode_header(count, publisher, seq, topic_seq, ack_floor, version=VERSION, kind=KIND_BATCH):
    """The 40-byte header frame of a batch (any field may be given a wrong value on purpose)."""
    return HEADER.pack(MAGIC, version, kind, count, publisher, seq, topic_seq, ack_floor)


def encode_body(payloads):
    """The body frame: each payload as a 4-byte length then its bytes, nothing after the last."""
    return b"".join(RECORD_LEN.pack(len(p)) + p for p in payloads)


Reply = namedtuple("Reply", "kind count publisher seq reason text")


def decode_reply(frame):
    """A reply frame from the ROUTER; raises ValueError if it is not one (PROTOCOL.md, Reply frame)."""
    if len(frame) < REPLY.size:
        raise ValueError(f"reply of {len(frame)} bytes, shorter than 25")
    magic, version, kind, count, publisher, seq, reason = REPLY.unpack_from(frame)
    if magic != MAGIC:
        raise ValueError(f"reply magic {magic!r}, not b'ZR'")
    if version != VERSION:
        raise ValueError(f"reply version {version}, not 1")
    if kind not in KIND_NAMES:
        raise ValueError(f"reply kind {kind}, not 2, 3 or 4")
    return Reply(kind, count, publisher, seq, reason, frame[REPLY.size:].decode("utf-8"))


def describe(reply):
    """One line for a person: 'NACK seq=5 count=1 reason=1 publisher=... "text"'."""
    return (f"{KIND_NAMES.get(reply.kind, reply.kind)} seq={reply.seq} count={reply.count} "
            f"reason={reply.reason} publisher={reply.publisher:#x}" + (f' "{reply.text}"' if reply.text else ""))


def new_publisher_id():
    """A publisher id: random, non-zero, kept for the life of the publisher (Header frame, publisher)."""
    while True:
        pid = secrets.randbits(64)
        if pid:
            return pid


Batch = namedtuple("Batch", "seq count topic_seq frames")


class AckedPublisher:
    """A DEALER to the relay's ROUTER that sends batches and follows "Publisher behaviour".

    Sequence numbers start at 1 for the publisher and for each topic; the ack floor is always
    last acknowledged seq + 1, so 1 <= floor <= seq. A batch keeps its frames for life: a resend
    (on timeout or EXPECT) sends the same bytes again, it is never rebuilt or re-batched.
    """

    def __init__(self, ctx, ack_endpoint, ack_timeout=3.0, retries=3, publisher_id=None):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(ack_endpoint)
        self.publisher = publisher_id if publisher_id is not None else new_publisher_id()
        self.ack_timeout = ack_timeout
        self.retries = retries
        self.next_seq = 1
        self.topic_seqs = {}
        self.acked = 0             # every seq <= this is done (cumulative ACK)
        self.inflight = []         # Batch, oldest first
        self.sent_at = None        # when the oldest batch in flight was (re)sent
        self.resends = 0           # resends of the oldest batch in flight
        self.expects_followed = set()
        self.replies = []          # every reply, in order of arrival
        self.nacks = []
        self.resent_batches = 0

    def close(self):
        self.sock.close()

    def build(self, topic, payloads):
        """Assign the next seq range and topic seq to a batch; its frames never change after this."""
        if not topic:
            raise ValueError("a topic must not be empty")
        if not payloads:
            raise ValueError("a batch holds at least one record")
        seq = self.next_seq
        topic_seq = self.topic_seqs.get(topic, 1)
        header = encode_header(len(payloads), self.publisher, seq, topic_seq, self.acked + 1)
        self.next_seq += len(payloads)
        self.topic_seqs[topic] = topic_seq + len(payloads)
        return Batch(seq, len(payloads), topic_seq, [topic, header, encode_body(payloads)])

    def publish(self, topic, payloads):
        """Build and send one batch; returns it."""
        batch = self.build(topic, payloads)
        self.send(batch)
        return batch

    def send(self, batch):
        """Send a built batch (first time); it stays in flight until an ACK or EXPECT covers it."""
        self.sock.send_multipart(batch.frames, copy=False)
        if not self.inflight:
            self.sent_at = time.monotonic()
            self.resends = 0
        self.inflight.append(batch)

    def lose(self, batch):
        """Count a built batch as sent without sending it: a batch lost on the way, for tests."""
        if not self.inflight:
            self.sent_at = time.monotonic()
            self.resends = 0
        self.inflight.append(batch)

    def inflight_messages(self):
        return sum(b.count for b in self.inflight)

    def _acknowledge(self, upto):
        """Everything <= upto is done: drop it from the window."""
        if upto <= self.acked:
            return
        self.acked = upto
        before = len(self.inflight)
        self.inflight = [b for b in self.inflight if b.seq + b.count - 1 > upto]
        if len(self.inflight) != before:
            self.sent_at = time.monotonic()
            self.resends = 0

    def _resend_from(self, seq):
        for b in self.inflight:
            if b.seq + b.count - 1 >= seq:
                self.sock.send_multipart(b.frames, copy=False)
                self.resent_batches += 1
        self.sent_at = time.monotonic()

    def handle(self, reply):
        """Apply one reply (PROTOCOL.md: Reply frame, Publisher behaviour)."""
        self.replies.append(reply)
        if reply.publisher != self.publisher:
            return
        if reply.kind == KIND_ACK:
            self._acknowledge(reply.seq)
        elif reply.kind == KIND_NACK:
            self.nacks.append(reply)  # the ACK that covers it follows
        elif reply.kind == KIND_EXPECT:
            self._acknowledge(reply.seq - 1)
            if reply.seq not in self.expects_followed:  # once per EXPECT value
                self.expects_followed.add(reply.seq)
                self._resend_from(reply.seq)

    def poll(self, timeout):
        """Wait up to timeout seconds for replies, apply each; resend everything on ack timeout.

        Returns the replies handled. Raises RuntimeError after `retries` resends of one batch.
        """
        got = []
        if self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            while True:
                try:
                    frames = self.sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if len(frames) != 1:
                    raise ValueError(f"a reply of {len(frames)} frames, expected 1")
                reply = decode_reply(frames[0])
                self.handle(reply)
                got.append(reply)
        if self.inflight and time.monotonic() - self.sent_at >= self.ack_timeout:
            if self.resends >= self.retries:
                raise RuntimeError(f"seq {self.inflight[0].seq} not acknowledged after {self.retries} resends")
            self.resends += 1
            self.expects_followed.clear()  # a later EXPECT is news again
            self._resend_from(self.inflight[0].seq)
        return got

    def drain(self, deadline):
        """Poll until nothing is in flight; raises TimeoutError at the deadline (time.monotonic())."""
        while self.inflight:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.inflight_messages()} messages still unacknowledged (acked {self.acked})")
            self.poll(min(left, 0.1))


Delivery = namedtuple("Delivery", "topic payload publisher seq topic_seq batch_count")
Delivery.__new__.__defaults__ = (None, None, None, None)


class DecodingSubscriber:
    """A SUB on the relay's XPUB that decodes what arrives as "Decoding as a plain subscriber" says.

    Batch records come out with their publisher, seq and topic seq; plain messages with those None.
    Loss and repeats are counted per (publisher, topic) as "Detecting loss" says.
    """

    def __init__(self, ctx, sub_endpoint, topics=(b"",)):
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        for t in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, t)
        self.sock.connect(sub_endpoint)
        self.expected = {}        # (publisher, topic) -> next topic seq
        self.missing = 0
        self.repeated = 0
        self.skipped_versions = set()
        self.undecodable = 0
        self.ignore = set()       # topics whose records recv() drops (a test's probes)

    def close(self):
        self.sock.close()

    def decode(self, frames):
        """The records of one ZeroMQ message, as a list of Delivery (empty if it is skipped).

        Steps 1-5 of "Decoding as a plain subscriber".
        """
        if len(frames) > MAX_FRAMES:  # 1
            self.undecodable += 1
            return []
        if len(frames) == 3 and len(frames[1]) >= 4 and frames[1][:2] == MAGIC and frames[1][3] == KIND_BATCH:  # 2
            header = frames[1]
            if header[2] != VERSION:
                self.skipped_versions.add(header[2])
                return []
            if len(header) != HEADER.size:
                self.undecodable += 1
                return []
            _, _, _, count, publisher, seq, topic_seq, _ = HEADER.unpack(header)
            if count == 0:
                self.undecodable += 1
                return []
            payloads, whole = self._records(frames[2], count)  # 3
            if not whole:
                self.undecodable += 1
            self._track(publisher, frames[0], topic_seq, count)
            return [Delivery(frames[0], p, publisher, seq + i, topic_seq + i, count) for i, p in enumerate(payloads)]
        if len(frames) == 1:  # 4
            return [Delivery(b"", frames[0])]
        return [Delivery(frames[0], b"".join(frames[1:]))]  # 5

    @staticmethod
    def _records(body, count):
        """The records that decode, up to the first fault, and whether the body was whole."""
        out, pos = [], 0
        for _ in range(count):
            if pos + 4 > len(body):
                return out, False
            (n,) = RECORD_LEN.unpack_from(body, pos)
            pos += 4
            if pos + n > len(body):
                return out, False
            out.append(body[pos:pos + n])
            pos += n
        return out, pos == len(body)

    def _track(self, publisher, topic, topic_seq, count):
        key = (publisher, topic)
        want = self.expected.get(key)
        if want is not None and topic_seq > want:
            self.missing += topic_seq - want
        elif want is not None and topic_seq < want:
            self.repeated += min(count, want - topic_seq)
        self.expected[key] = max(want or 0, topic_seq + count)

    def recv(self, timeout):
        """The records of the next message within timeout seconds, or None if none came."""
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        return [r for r in self.decode(self.sock.recv_multipart()) if r.topic not in self.ignore]

    def recv_until(self, done, deadline):
        """Collect records until done(records) is true; returns them (and stops at the deadline)."""
        got = []
        while not done(got):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            recs = self.recv(min(left, 0.1))
            if recs:
                got.extend(recs)
        return got
