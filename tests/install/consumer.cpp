// Embeds a relay in-process and sends one acknowledged message through it.
#include <iostream>
#include <thread>

#include <zrelay/publisher.hpp>
#include <zrelay/relay.hpp>
#include <zrelay/subscriber.hpp>
#include <zrelay/version.hpp>

int main() {
  zmq::context_t ctx;
  zrelay::relay_config rc;
  rc.pub_bind = "inproc://pub";
  rc.sub_bind = "inproc://sub";
  rc.ack_bind = "inproc://ack";
  zrelay::relay relay(ctx, rc);
  std::thread t([&] { relay.run(); });

  zrelay::subscriber_config sc;
  sc.endpoint = rc.sub_bind;
  sc.topics = {"t"};
  zrelay::subscriber sub(ctx, sc);
  sub.connect();
  zrelay::publisher_config pc;
  pc.ack_endpoint = rc.ack_bind;
  zrelay::publisher pub(ctx, pc);
  pub.connect();

  // Publish until the subscription has reached the relay and the message comes back.
  std::string got;
  for (int i = 0; i < 100 && got.empty(); ++i) {
    pub.publish("t", "hello");
    if (!pub.drain(std::chrono::seconds(5))) break;
    sub.receive(std::chrono::milliseconds(100), [&](const zrelay::message_view& m) {
      got = std::string(m.payload);
      return false;
    });
  }
  relay.request_stop();
  t.join();
  std::cout << "consumer (zrelay " << zrelay::version_string << ") received '" << got << "'" << std::endl;
  return got == "hello" ? 0 : 1;
}
