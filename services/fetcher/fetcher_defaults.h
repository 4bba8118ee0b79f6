// Defaults of the fetcher's settings that other code must agree with: the
// benchmark measures "the default settings" and states them (PERFORMANCE.md).
#ifndef POCKETMAIL_SERVICES_FETCHER_FETCHER_DEFAULTS_H_
#define POCKETMAIL_SERVICES_FETCHER_FETCHER_DEFAULTS_H_

namespace pocketmail::fetcher {

// FETCH_CONCURRENCY. Each message costs a few round trips to R2 (GET, COPY,
// DELETE, ledger writes between), so on a phone's ~60 ms link throughput
// scales with the number in flight: 16 reaches the 45 msg/s goal where 8 gave
// 37 (docs/PERFORMANCE.md). FETCH_MEMORY_BUDGET_MB, not this, bounds memory.
inline constexpr int kDefaultFetchConcurrency = 16;

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_FETCHER_DEFAULTS_H_
