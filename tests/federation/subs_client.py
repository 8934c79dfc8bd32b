"""A subscriber with many subscriptions, for tests/federation/subs_restored.sh.

subs_client.py ENDPOINT COUNT SECONDS: a SUB socket on ENDPOINT subscribes to COUNT distinct prefixes
'k/00000/' ... (one subscription each), prints 'subscribed COUNT' and then waits up to SECONDS for a
message on each of them (the topic is the first frame). Prints 'received N of COUNT' and exits 0 when
every prefix got one, 1 otherwise (with a few of the prefixes that got none)."""
import sys
import time

import zmq


def main():
    endpoint, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SNDHWM, 0)  # the subscriptions go out through the send queue
    prefixes = ['k/%05d/' % i for i in range(count)]
    for p in prefixes:
        sub.setsockopt(zmq.SUBSCRIBE, p.encode())
    sub.connect(endpoint)
    print('subscribed %d' % count, flush=True)
    seen = set()
    deadline = time.monotonic() + seconds
    while len(seen) < count:
        left = deadline - time.monotonic()
        if left <= 0 or not sub.poll(int(left * 1000) + 1):
            break
        frames = sub.recv_multipart()
        topic = frames[0].decode('utf-8', 'replace')
        seen.add(topic[:8])
    print('received %d of %d' % (len(seen), count), flush=True)
    if len(seen) < count:
        print('none on: %s' % ' '.join([p for p in prefixes if p not in seen][:5]), flush=True)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
