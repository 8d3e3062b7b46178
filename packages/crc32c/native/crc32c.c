/*
 * CRC-32C with the SSE 4.2 crc32 instruction, three streams at a time.
 *
 * Why this exists: the broker checks the CRC of every produced batch, and @node-rs/crc32 reached
 * about 7.6 GiB/s here, one dependent crc32 instruction after another; the instruction's latency
 * is three cycles and its throughput one per cycle, so three independent streams reach about
 * 30 GiB/s on the same CPU (scripts/bench/crc32c.mjs). The check was 14-16% of the broker's CPU
 * while producing; about 5% now, the batches being larger than the CPU's caches.
 *
 * How: a block of 3 * N bytes is split into three runs of N bytes whose CRCs are computed side by
 * side, the second and third starting from zero. CRC is linear over GF(2), so the CRC of A || B is
 * (the CRC of A advanced over N zero bytes) XOR (the CRC of B from zero). Advancing over N zero
 * bytes is itself linear in the 32-bit state: a table of 4 x 256 entries, built at load time from
 * the instruction itself, does it in four lookups. Inputs of 1 KiB and more are folded with AVX-512
 * carry-less multiplication instead where the CPU has it (below).
 */
#define NAPI_VERSION 8
#include <cpuid.h>
#include <immintrin.h>
#include <nmmintrin.h>
#include <stdbool.h>
#include <node_api.h>
#include <stdint.h>
#include <string.h>

/* Large blocks keep the two table lookups per block negligible; small ones serve short batches. */
#define LONG_RUN 8192
#define SHORT_RUN 256

typedef uint32_t AdvanceTable[4][256];

static AdvanceTable advance_long;
static AdvanceTable advance_short;

__attribute__((target("sse4.2"))) static uint32_t advance_over_zeros(uint32_t state, size_t bytes) {
  uint64_t crc = state;
  for (size_t done = 0; done < bytes; done += 8) crc = _mm_crc32_u64(crc, 0);
  return (uint32_t)crc;
}

static void build_advance_table(AdvanceTable table, size_t bytes) {
  uint32_t basis[32];
  for (int bit = 0; bit < 32; bit++) basis[bit] = advance_over_zeros(1u << bit, bytes);
  for (int lane = 0; lane < 4; lane++) {
    for (int value = 0; value < 256; value++) {
      uint32_t advanced = 0;
      for (int bit = 0; bit < 8; bit++) {
        if (value & (1 << bit)) advanced ^= basis[lane * 8 + bit];
      }
      table[lane][value] = advanced;
    }
  }
}

static inline uint32_t advance(const AdvanceTable table, uint32_t state) {
  return table[0][state & 255] ^ table[1][(state >> 8) & 255] ^ table[2][(state >> 16) & 255] ^
         table[3][state >> 24];
}

static inline uint64_t load_u64(const uint8_t *at) {
  uint64_t value;
  memcpy(&value, at, sizeof value);
  return value;
}

__attribute__((target("sse4.2"))) static const uint8_t *three_streams(uint64_t *state, const uint8_t *at,
                                                                       size_t *left, size_t run,
                                                                       const AdvanceTable table) {
  uint64_t first = *state;
  while (*left >= 3 * run) {
    uint64_t second = 0;
    uint64_t third = 0;
    const uint8_t *end = at + run;
    for (; at < end; at += 8) {
      first = _mm_crc32_u64(first, load_u64(at));
      second = _mm_crc32_u64(second, load_u64(at + run));
      third = _mm_crc32_u64(third, load_u64(at + 2 * run));
    }
    first = advance(table, (uint32_t)first) ^ (uint32_t)second;
    first = advance(table, (uint32_t)first) ^ (uint32_t)third;
    at += 2 * run;
    *left -= 3 * run;
  }
  *state = first;
  return at;
}

/*
 * Where the CPU has AVX-512 carry-less multiplication (VPCLMULQDQ), long inputs are folded instead: four
 * 64-byte accumulators, each 128-bit lane multiplied forward by 256 bytes and XORed onto the data there,
 * then the accumulators and lanes folded onto the last 16 bytes, whose CRC (from zero) is the CRC of all
 * the bytes before. Folding a 16-byte lane forward by D bytes multiplies its low half by x^(8D+32) and
 * its high half by x^(8D-32), modulo the polynomial, bit-reflected and shifted left once as the
 * reflected carry-less product needs: the constants below (derived and checked against the bytewise CRC
 * in a scratch model; the tests compare with @node-rs/crc32). Older Intel server CPUs (Skylake-SP) lower
 * their clock while running 512-bit instructions, so the gain there may be smaller than measured here.
 */
#define FOLD_MIN_BYTES 1024

#define FOLD_CONSTANTS(low, high) _mm512_set_epi64(high, low, high, low, high, low, high, low)

__attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2"))) static inline __m512i
fold_forward(__m512i lanes, __m512i constants) {
  return _mm512_xor_si512(_mm512_clmulepi64_epi128(lanes, constants, 0x00),
                          _mm512_clmulepi64_epi128(lanes, constants, 0x11));
}

__attribute__((target("pclmul,sse4.2"))) static inline __m128i fold_lane(__m128i lane, uint64_t low,
                                                                       uint64_t high) {
  __m128i constants = _mm_set_epi64x((long long)high, (long long)low);
  return _mm_xor_si128(_mm_clmulepi64_si128(lane, constants, 0x00), _mm_clmulepi64_si128(lane, constants, 0x11));
}

/* The CRC state over as many whole 256-byte blocks as `*left` holds (at least one), from `*state`. */
__attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2"))) static const uint8_t *
fold_blocks(uint64_t *state, const uint8_t *at, size_t *left) {
  __m512i x0 = _mm512_loadu_si512((const void *)at);
  __m512i x1 = _mm512_loadu_si512((const void *)(at + 64));
  __m512i x2 = _mm512_loadu_si512((const void *)(at + 128));
  __m512i x3 = _mm512_loadu_si512((const void *)(at + 192));
  x0 = _mm512_xor_si512(x0, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)(uint32_t)*state)));
  at += 256;
  *left -= 256;
  const __m512i by256 = FOLD_CONSTANTS(0xdcb17aa4, 0xb9e02b86);
  while (*left >= 256) {
    x0 = _mm512_xor_si512(fold_forward(x0, by256), _mm512_loadu_si512((const void *)at));
    x1 = _mm512_xor_si512(fold_forward(x1, by256), _mm512_loadu_si512((const void *)(at + 64)));
    x2 = _mm512_xor_si512(fold_forward(x2, by256), _mm512_loadu_si512((const void *)(at + 128)));
    x3 = _mm512_xor_si512(fold_forward(x3, by256), _mm512_loadu_si512((const void *)(at + 192)));
    at += 256;
    *left -= 256;
  }
  __m512i x = _mm512_xor_si512(fold_forward(x0, FOLD_CONSTANTS(0xa87ab8a8, 0xab7aff2a)),
                               fold_forward(x1, FOLD_CONSTANTS(0x6992cea2, 0x0d3b6092)));
  x = _mm512_xor_si512(x, fold_forward(x2, FOLD_CONSTANTS(0x740eef02, 0x9e4addf8)));
  x = _mm512_xor_si512(x, x3);
  __m128i lane = fold_lane(_mm512_extracti32x4_epi32(x, 0), 0x1c291d04, 0x1d82c63da);
  lane = _mm_xor_si128(lane, fold_lane(_mm512_extracti32x4_epi32(x, 1), 0x1384aa63a, 0xba4fc28e));
  lane = _mm_xor_si128(lane, fold_lane(_mm512_extracti32x4_epi32(x, 2), 0xf20c0dfe, 0x14cd00bd6));
  lane = _mm_xor_si128(lane, _mm512_extracti32x4_epi32(x, 3));
  uint64_t crc = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(lane));
  *state = _mm_crc32_u64(crc, (uint64_t)_mm_extract_epi64(lane, 1));
  return at;
}

static bool fold_available;

/*
 * `previous` is the CRC of the bytes before these (0 for none), as in @node-rs/crc32. `fold` lets long
 * inputs be folded (where the CPU can).
 */
__attribute__((target("sse4.2"))) static uint32_t crc32c(uint32_t previous, const uint8_t *at, size_t left,
                                                          bool fold) {
  uint64_t state = (uint32_t)~previous;
  if (fold && fold_available && left >= FOLD_MIN_BYTES) at = fold_blocks(&state, at, &left);
  at = three_streams(&state, at, &left, LONG_RUN, advance_long);
  at = three_streams(&state, at, &left, SHORT_RUN, advance_short);
  for (; left >= 8; left -= 8, at += 8) state = _mm_crc32_u64(state, load_u64(at));
  for (; left > 0; left--, at++) state = _mm_crc32_u8((uint32_t)state, *at);
  return ~(uint32_t)state;
}

static napi_value crc32c_binding(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool *fold;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&fold) != napi_ok) return NULL;
  napi_typedarray_type type;
  size_t length;
  void *data;
  bool is_typed_array = false;
  if (argc >= 1) napi_is_typedarray(env, argv[0], &is_typed_array);
  if (is_typed_array) napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL);
  if (!is_typed_array || (type != napi_uint8_array && type != napi_int8_array && type != napi_uint8_clamped_array)) {
    napi_throw_type_error(env, NULL, "crc32c takes a Uint8Array or Buffer");
    return NULL;
  }
  uint32_t previous = 0;
  if (argc >= 2 && napi_get_value_uint32(env, argv[1], &previous) != napi_ok) {
    napi_throw_type_error(env, NULL, "crc32c's second argument is the previous CRC, a number");
    return NULL;
  }
  napi_value result;
  napi_create_uint32(env, crc32c(previous, data, length, *fold), &result);
  return result;
}

NAPI_MODULE_INIT() {
  unsigned eax, ebx, ecx, edx;
  bool sse42 = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_SSE4_2);
  if (sse42) {
    fold_available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                     __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul");
    build_advance_table(advance_long, LONG_RUN);
    build_advance_table(advance_short, SHORT_RUN);
    static bool fold = true;
    static bool no_fold = false;
    napi_value function, folds;
    napi_create_function(env, "crc32c", NAPI_AUTO_LENGTH, crc32c_binding, &fold, &function);
    napi_set_named_property(env, exports, "crc32c", function);
    /* The same without folding, for the tests and the benchmark to compare. */
    napi_create_function(env, "crc32cThreeStreams", NAPI_AUTO_LENGTH, crc32c_binding, &no_fold, &function);
    napi_set_named_property(env, exports, "crc32cThreeStreams", function);
    napi_get_boolean(env, fold_available, &folds);
    napi_set_named_property(env, exports, "folds", folds);
  }
  return exports;
}
