// The gateware (Verilog from Amaranth, compiled by Verilator) as a process the simulator drives
// over stdin/stdout, so the simulator can serve the RTL behind its FPGA socket.
//
// Time is the design's clock cycle count (the timestamp, which starts at 0). Inputs are set in
// a cycle and sampled at the rising edge that ends it. All integers little-endian.
//
// On start the bridge writes a hello: "FLYSRTL1", then u32 n_channels, counter_bits,
// fifo_depth, snapshot_depth, input_latency, half_period (SCLK half period in cycles).
//
// Requests (one byte, then arguments):
//   'P' u32 n, n x (u64 cycle, u8 pin, u8 level)   schedule pin levels (pin 0 A, 1 B, 2 gate,
//                                                    3+ch detector ch); no answer
//   'A' u64 cycle                                   run until that cycle; no answer
//   'X' u32 len, len bytes                          one SPI transaction from the current cycle;
//                                                    answer: len MISO bytes, u64 cycle after it,
//                                                    u64 events dropped so far (FIFO overrun)
//   'D'                                             answer: u8 DRDY level now
//   'S'                                             answer: u64 cycle now, u64 events dropped
//   'Q'                                             exit
// A request the bridge cannot honour (a pin change in the past, a bad pin) ends it with a
// message on stderr and exit status 2; the simulator sees the pipe close.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <queue>
#include <string>
#include <unistd.h>
#include <vector>

#include "Vflyscan_core.h"
#include "flyscan_params.h"
#include "verilated.h"

namespace {

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "flyscan-rtl-bridge: %s\n", msg.c_str());
    std::exit(2);
}

class Io {
  public:
    // Buffered: a pin schedule is thousands of 10-byte records.
    void read(void* dst, size_t n) {
        auto* p = static_cast<uint8_t*>(dst);
        while (n > 0) {
            if (in_at_ == in_len_) {
                ssize_t k = ::read(0, in_, sizeof in_);
                if (k == 0) std::exit(0);  // the simulator went away: nothing left to do
                if (k < 0) die("reading stdin failed");
                in_at_ = 0;
                in_len_ = static_cast<size_t>(k);
            }
            const size_t k = std::min(n, in_len_ - in_at_);
            std::memcpy(p, in_ + in_at_, k);
            in_at_ += k;
            p += k;
            n -= k;
        }
    }
    template <typename T> T get() {
        uint8_t b[sizeof(T)];
        read(b, sizeof b);
        T v = 0;
        for (size_t i = sizeof b; i-- > 0;) v = static_cast<T>(v << 8 | b[i]);
        return v;
    }
    void put_bytes(const uint8_t* p, size_t n) { out_.insert(out_.end(), p, p + n); }
    template <typename T> void put(T v) {
        for (size_t i = 0; i < sizeof(T); i++) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
    void flush() {
        size_t at = 0;
        while (at < out_.size()) {
            ssize_t k = ::write(1, out_.data() + at, out_.size() - at);
            if (k <= 0) die("writing stdout failed");
            at += static_cast<size_t>(k);
        }
        out_.clear();
    }

  private:
    uint8_t in_[1 << 16];
    size_t in_at_ = 0;
    size_t in_len_ = 0;
    std::vector<uint8_t> out_;
};

struct Event {
    uint64_t cycle;
    uint64_t order;  // keeps same-cycle events in arrival order
    uint8_t pin;
    uint8_t level;
    bool operator>(const Event& o) const {
        return cycle != o.cycle ? cycle > o.cycle : order > o.order;
    }
};

constexpr uint64_t kCsSetup = 2;
constexpr uint64_t kCsHold = 2;
constexpr uint64_t kCsGap = 4;

class Bridge {
  public:
    Bridge() : top_(std::make_unique<Vflyscan_core>()) {
        top_->clk = 0;
        top_->rst = 0;
        top_->cs_n = 1;
        top_->gate = 1;
        top_->eval();
    }

    void schedule(uint64_t cycle, uint8_t pin, uint8_t level) {
        if (cycle < cycle_)
            die("pin " + std::to_string(pin) + " change at cycle " + std::to_string(cycle) +
                " but the design is at cycle " + std::to_string(cycle_));
        if (pin >= 3 + FLYSCAN_N_CHANNELS) die("no pin " + std::to_string(pin));
        events_.push(Event{cycle, order_++, pin, level});
    }

    void run_to(uint64_t cycle) {
        while (cycle_ < cycle) tick();
    }

    // One transaction from now, clocked as the vector replay does (FPGA.md timing).
    std::vector<uint8_t> transfer(const std::vector<uint8_t>& mosi) {
        const uint64_t h = FLYSCAN_HALF_PERIOD;
        std::vector<uint8_t> miso(mosi.size(), 0);
        top_->cs_n = 0;
        uint64_t t = cycle_ + kCsSetup;
        for (size_t i = 0; i < 8 * mosi.size(); i++) {
            run_to(t);
            top_->sclk = 0;
            top_->mosi = (mosi[i / 8] >> (7 - i % 8)) & 1;
            run_to(t + h);
            top_->sclk = 1;
            miso[i / 8] = static_cast<uint8_t>(miso[i / 8] << 1 | (top_->miso & 1));
            t += 2 * h;
        }
        run_to(t);
        top_->sclk = 0;
        run_to(t + kCsHold);
        top_->cs_n = 1;
        run_to(t + kCsHold + kCsGap);
        return miso;
    }

    uint8_t drdy() const { return top_->drdy & 1; }
    uint64_t cycle() const { return cycle_; }
    uint64_t dropped() const { return dropped_; }

  private:
    void set_pin(uint8_t pin, uint8_t level) {
        level &= 1;
        switch (pin) {
            case 0: top_->enc_a = level; break;
            case 1: top_->enc_b = level; break;
            case 2: top_->gate = level; break;
            default: {
                const uint32_t bit = 1u << (pin - 3);
                top_->det = level ? (top_->det | bit) : (top_->det & ~bit);
            }
        }
    }

    void tick() {
        while (!events_.empty() && events_.top().cycle == cycle_) {
            set_pin(events_.top().pin, events_.top().level);
            events_.pop();
        }
        // Inputs only feed synchroniser flip-flops, so outputs settled by the last evaluation
        // still hold: no evaluation is needed before the clock edge.
        if (top_->dropped & 1) dropped_++;
        top_->clk = 1;
        top_->eval();
        top_->clk = 0;
        top_->eval();
        cycle_++;
    }

    std::unique_ptr<Vflyscan_core> top_;
    std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
    uint64_t order_ = 0;
    uint64_t cycle_ = 0;
    uint64_t dropped_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    Io io;
    Bridge b;
    io.put_bytes(reinterpret_cast<const uint8_t*>("FLYSRTL1"), 8);
    for (uint32_t v : {FLYSCAN_N_CHANNELS, FLYSCAN_COUNTER_BITS, FLYSCAN_FIFO_DEPTH,
                       FLYSCAN_SNAPSHOT_DEPTH, FLYSCAN_INPUT_LATENCY, FLYSCAN_HALF_PERIOD})
        io.put<uint32_t>(v);
    io.flush();
    std::vector<uint8_t> buf;
    for (;;) {
        const uint8_t req = io.get<uint8_t>();
        switch (req) {
            case 'P': {
                const uint32_t n = io.get<uint32_t>();
                for (uint32_t i = 0; i < n; i++) {
                    const uint64_t cycle = io.get<uint64_t>();
                    const uint8_t pin = io.get<uint8_t>();
                    const uint8_t level = io.get<uint8_t>();
                    b.schedule(cycle, pin, level);
                }
                break;
            }
            case 'A': b.run_to(io.get<uint64_t>()); break;
            case 'X': {
                const uint32_t n = io.get<uint32_t>();
                if (n > (1u << 20)) die("transaction of " + std::to_string(n) + " bytes");
                buf.resize(n);
                io.read(buf.data(), n);
                const auto miso = b.transfer(buf);
                io.put_bytes(miso.data(), miso.size());
                io.put<uint64_t>(b.cycle());
                io.put<uint64_t>(b.dropped());
                io.flush();
                break;
            }
            case 'D':
                io.put<uint8_t>(b.drdy());
                io.flush();
                break;
            case 'S':
                io.put<uint64_t>(b.cycle());
                io.put<uint64_t>(b.dropped());
                io.flush();
                break;
            case 'Q': return 0;
            default: die("unknown request byte " + std::to_string(req));
        }
    }
}
