#include <atomic>
#include <curl/curl.h>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include <streamrun/base/errc.h>
#include <streamrun/http/client.h>

namespace streamrun::http {
namespace {

struct EasyDeleter {
  void operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }
};
struct MultiDeleter {
  void operator()(CURLM* handle) const noexcept { curl_multi_cleanup(handle); }
};
struct ListDeleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;
using Multi = std::unique_ptr<CURLM, MultiDeleter>;
using HeaderList = std::unique_ptr<curl_slist, ListDeleter>;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One request on its way: owns what libcurl points at until the transfer ends.
struct Transfer {
  Request request;
  Client::Callback done;
  Easy easy;
  HeaderList headers;
  std::string body;
  std::size_t max_bytes = 0;
  bool too_large = false;
  char error[CURL_ERROR_SIZE] = {};
};

std::size_t write_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const auto bytes = size * count;
  if (transfer->body.size() + bytes > transfer->max_bytes) {
    transfer->too_large = true;
    return 0;  // makes libcurl end the transfer with CURLE_WRITE_ERROR
  }
  transfer->body.append(data, bytes);
  return bytes;
}

}  // namespace

class Client::Impl {
 public:
  explicit Impl(ClientOptions options) : options_(options) {
    global_init();
    multi_.reset(curl_multi_init());
    if (!multi_)
      throw std::runtime_error("http client: curl_multi_init failed");
    if (options_.max_host_connections > 0)
      curl_multi_setopt(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS, options_.max_host_connections);
    thread_ = std::thread([this] { run(); });
  }

  ~Impl() {
    stopping_ = true;
    curl_multi_wakeup(multi_.get());
    thread_.join();
  }

  void send(Request request, Callback done) {
    auto transfer = std::make_unique<Transfer>();
    transfer->request = std::move(request);
    transfer->done = std::move(done);
    transfer->max_bytes = options_.max_response_bytes;
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mutex_);
      incoming_.push_back(std::move(transfer));
    }
    curl_multi_wakeup(multi_.get());
  }

  [[nodiscard]] std::size_t in_flight() const noexcept {
    return in_flight_.load(std::memory_order_relaxed);
  }

 private:
  void run() {
    while (!stopping_) {
      start_incoming();
      int running = 0;
      curl_multi_perform(multi_.get(), &running);
      finish_done();
      curl_multi_poll(multi_.get(), nullptr, 0, 1000, nullptr);
    }
    // Stopping: every open request gets its answer, an error.
    std::deque<std::unique_ptr<Transfer>> left;
    {
      std::lock_guard lock(mutex_);
      left.swap(incoming_);
    }
    for (auto& transfer : left)
      end(std::move(transfer), Error(errc::cancelled, stopped(*transfer)));
    for (auto& [easy, transfer] : active_) {
      curl_multi_remove_handle(multi_.get(), easy);
      end(std::move(transfer), Error(errc::cancelled, stopped(*transfer)));
    }
    active_.clear();
  }

  static std::string stopped(const Transfer& transfer) {
    return fmt::format("{} {}: the HTTP client stopped first", transfer.request.method,
                       transfer.request.url);
  }

  void start_incoming() {
    std::deque<std::unique_ptr<Transfer>> batch;
    {
      std::lock_guard lock(mutex_);
      batch.swap(incoming_);
    }
    for (auto& transfer : batch) {
      if (auto why = prepare(*transfer); !why.empty()) {
        end(std::move(transfer), Error(errc::invalid_argument, why));
        continue;
      }
      CURL* easy = transfer->easy.get();
      curl_multi_add_handle(multi_.get(), easy);
      active_.emplace(easy, std::move(transfer));
    }
  }

  // Empty when the request is ready to go; else why not.
  std::string prepare(Transfer& transfer) {
    const auto& request = transfer.request;
    transfer.easy.reset(curl_easy_init());
    CURL* easy = transfer.easy.get();
    if (easy == nullptr)
      return fmt::format("{} {}: curl_easy_init failed", request.method, request.url);
    curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer.error);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, &transfer);
    if (request.method == "GET") {
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else if (request.method == "POST" || request.method == "PUT" || request.method == "PATCH" ||
               request.method == "DELETE") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      if (request.method != "DELETE" || !request.body.empty()) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.c_str());
      }
    } else {
      return fmt::format("{} {}: unsupported method (GET, POST, PUT, PATCH or DELETE)",
                         request.method, request.url);
    }
    curl_slist* list = nullptr;
    for (const auto& [name, value] : request.headers) {
      auto* next = curl_slist_append(list, (name + ": " + value).c_str());
      if (next == nullptr) {
        curl_slist_free_all(list);
        return fmt::format("{} {}: out of memory for headers", request.method, request.url);
      }
      list = next;
    }
    // libcurl would send "Expect: 100-continue" for larger bodies, costing a round trip.
    list = curl_slist_append(list, "Expect:");
    transfer.headers.reset(list);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
    return {};
  }

  void finish_done() {
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi_.get(), &left)) {
      if (message->msg != CURLMSG_DONE)
        continue;
      CURL* easy = message->easy_handle;
      const CURLcode code = message->data.result;
      auto it = active_.find(easy);
      if (it == active_.end())
        continue;
      auto transfer = std::move(it->second);
      active_.erase(it);
      curl_multi_remove_handle(multi_.get(), easy);
      const auto& request = transfer->request;
      if (code != CURLE_OK) {
        const auto code_of = code == CURLE_OPERATION_TIMEDOUT ? errc::timed_out
                             : transfer->too_large            ? errc::invalid_argument
                                                              : errc::unavailable;
        const std::string detail =
            transfer->too_large
                ? fmt::format("response larger than {} bytes", transfer->max_bytes)
                : std::string(transfer->error[0] != '\0' ? transfer->error
                                                         : curl_easy_strerror(code));
        end(std::move(transfer),
            Error(code_of, fmt::format("{} {}: {}", request.method, request.url, detail)));
        continue;
      }
      Response response;
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      response.status = static_cast<int>(status);
      char* type = nullptr;
      curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &type);
      if (type != nullptr)
        response.content_type = type;
      response.body = std::move(transfer->body);
      end(std::move(transfer), std::move(response));
    }
  }

  void end(std::unique_ptr<Transfer> transfer, Result<Response> result) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    try {
      transfer->done(std::move(result));
    } catch (...) {
      // A callback must not take the I/O thread down with it.
    }
  }

  const ClientOptions options_;
  Multi multi_;
  std::mutex mutex_;
  std::deque<std::unique_ptr<Transfer>> incoming_;
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active_;  // I/O thread only
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(options)) {}
Client::~Client() = default;

void Client::send(Request request, Callback done) {
  impl_->send(std::move(request), std::move(done));
}

std::size_t Client::in_flight() const noexcept {
  return impl_->in_flight();
}

std::shared_ptr<Client> Client::shared() {
  static std::mutex mutex;
  static std::weak_ptr<Client> current;
  std::lock_guard lock(mutex);
  if (auto client = current.lock())
    return client;
  auto client = std::make_shared<Client>();
  current = client;
  return client;
}

std::string describe_failure(const Result<Response>& answer, std::string_view what) {
  if (!answer)
    return answer.error().message();
  constexpr std::size_t kExcerpt = 200;
  const auto& body = answer->body;
  return fmt::format("HTTP {} from {}: {}{}", answer->status, what, body.substr(0, kExcerpt),
                     body.size() > kExcerpt ? "..." : "");
}

CallStatus classify(int status) noexcept {
  if (status >= 200 && status < 300)
    return CallStatus::ok;
  if (status == 408 || status == 429 || status >= 500)
    return CallStatus::failed;
  return CallStatus::rejected;
}

}  // namespace streamrun::http
