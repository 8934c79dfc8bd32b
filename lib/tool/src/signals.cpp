#include "zrelay/signals.hpp"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <string>

namespace zrelay {

signal_watch::signal_watch(std::initializer_list<int> more) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  for (const int s : more) sigaddset(&set, s);
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) throw std::runtime_error("cannot block signals");
  fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error(std::string("cannot create signalfd: ") + std::strerror(errno));
}

signal_watch::~signal_watch() {
  if (fd_ >= 0) ::close(fd_);
}

bool signal_watch::triggered() {
  if (signo_ != 0) return true;
  signalfd_siginfo info{};
  if (::read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) signo_ = static_cast<int>(info.ssi_signo);
  return signo_ != 0;
}

int signal_watch::take() {
  signalfd_siginfo info{};
  if (::read(fd_, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return 0;
  signo_ = static_cast<int>(info.ssi_signo);
  return signo_;
}

}  // namespace zrelay
