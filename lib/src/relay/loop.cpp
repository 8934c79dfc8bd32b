#include "relay/loop.hpp"

namespace zrelay {

void reactor::add(zmq::socket_t& s, handler h, when_held held) {
  entries_.push_back({s.handle(), -1, std::move(h), held});
}

void reactor::add(int fd, handler h, when_held held) { entries_.push_back({nullptr, fd, std::move(h), held}); }

int reactor::run_once(std::chrono::milliseconds timeout, bool holding, const std::function<bool()>& may_read) {
  items_.clear();
  item_entry_.clear();
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const auto& e = entries_[i];
    if (holding && e.held == when_held::wait) continue;
    items_.push_back({e.socket, e.fd, ZMQ_POLLIN, 0});
    item_entry_.push_back(i);
  }
  if (zmq::poll(items_.data(), items_.size(), timeout) <= 0) return 0;
  int ran = 0;
  for (std::size_t k = 0; k < items_.size(); ++k) {
    if (!(items_[k].revents & ZMQ_POLLIN)) continue;
    auto& e = entries_[item_entry_[k]];
    if (e.held == when_held::wait && may_read && !may_read()) continue;
    e.fn();
    ++ran;
  }
  return ran;
}

}  // namespace zrelay
