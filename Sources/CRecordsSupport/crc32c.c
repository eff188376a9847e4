#include "CRecordsSupport.h"
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t table[8][256];
static int table_ready = 0;

static void build_table(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
    table[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = table[0][n];
    for (int k = 1; k < 8; k++) {
      c = table[0][c & 0xff] ^ (c >> 8);
      table[k][n] = c;
    }
  }
  __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t ctr_crc32c_extend_portable(uint32_t crc, const void *data, size_t len) {
  if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) build_table();  // idempotent: racing builders write equal values
  const uint8_t *p = (const uint8_t *)data;
  uint32_t c = ~crc;
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    w ^= c;  // little-endian: the low 32 bits meet the running CRC
    c = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
        table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
        table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
    p += 8;
    len -= 8;
  }
  while (len--) c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>
#include <wmmintrin.h>

// Three independent streams hide the 3-cycle latency of crc32: a buffer is cut into three
// equal blocks of B bytes, each run from its own state, and the states are merged by
// "appending B zero bytes" to the earlier ones. TFRecord payloads are a few hundred bytes, so
// the merge must be cheap for any B: one carry-less multiply by x^(8B-33) mod P and one crc32
// to reduce (the product's 64 bits, fed to crc32 from a zero state, gain the other x^33).
#define MAX_BLOCK 4096
#define MIN_INTERLEAVED 96

// shift_k[B/8] = { x^(8B-33), x^(16B-33) } mod P, reflected; built once.
static uint32_t shift_k[MAX_BLOCK / 8 + 1][2];
static int shift_ready = 0;

// Multiply two polynomials modulo the CRC polynomial (reflected bit order).
static uint32_t gf2_multiply(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; i++) {
    if (a & 0x80000000u) product ^= b;
    a <<= 1;
    b = (b & 1) ? (b >> 1) ^ CRC32C_POLY : b >> 1;
  }
  return product;
}

// x^k mod P, in reflected form (bit 31 is the coefficient of x^0).
static uint32_t x_pow(uint64_t k) {
  uint32_t result = 0x80000000u;  // x^0
  uint32_t square = 0x40000000u;  // x^1
  while (k) {
    if (k & 1) result = gf2_multiply(result, square);
    square = gf2_multiply(square, square);
    k >>= 1;
  }
  return result;
}

static void build_shift_k(void) {
  for (uint64_t i = 4; i <= MAX_BLOCK / 8; i++) {  // B >= 32 bytes: 8B-33 stays positive
    shift_k[i][0] = x_pow(64 * i - 33);
    shift_k[i][1] = x_pow(128 * i - 33);
  }
  __atomic_store_n(&shift_ready, 1, __ATOMIC_RELEASE);
}

// crc * x^(8n) mod P, with k = x^(8n-33) mod P.
__attribute__((target("sse4.2,pclmul")))
static inline uint32_t shift(uint32_t crc, uint32_t k) {
  __m128i product = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)crc), _mm_cvtsi32_si128((int)k), 0);
  return (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(product));
}

__attribute__((target("sse4.2,pclmul")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len) {
  uint64_t c0 = ~crc;
  while (len && ((uintptr_t)p & 7)) { c0 = _mm_crc32_u8((uint32_t)c0, *p++); len--; }
  if (len >= MIN_INTERLEAVED && !__atomic_load_n(&shift_ready, __ATOMIC_ACQUIRE)) build_shift_k();
  while (len >= MIN_INTERLEAVED) {
    size_t block = len / 24 * 8;  // a third, in whole words
    if (block > MAX_BLOCK) block = MAX_BLOCK;
    uint64_t c1 = 0, c2 = 0;
    const uint8_t *end = p + block;
    while (p < end) {
      uint64_t w0, w1, w2;
      memcpy(&w0, p, 8);
      memcpy(&w1, p + block, 8);
      memcpy(&w2, p + 2 * block, 8);
      c0 = _mm_crc32_u64(c0, w0);
      c1 = _mm_crc32_u64(c1, w1);
      c2 = _mm_crc32_u64(c2, w2);
      p += 8;
    }
    const uint32_t *k = shift_k[block / 8];
    c0 = shift((uint32_t)c0, k[1]) ^ shift((uint32_t)c1, k[0]) ^ (uint32_t)c2;
    p += 2 * block;
    len -= 3 * block;
  }
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c0 = _mm_crc32_u64(c0, w);
    p += 8;
    len -= 8;
  }
  while (len--) c0 = _mm_crc32_u8((uint32_t)c0, *p++);
  return ~(uint32_t)c0;
}

static int hw = -1;

int ctr_crc32c_hardware_available(void) {
  if (hw < 0) {
    __builtin_cpu_init();
    hw = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul") ? 1 : 0;
  }
  return hw;
}

uint32_t ctr_crc32c_extend(uint32_t crc, const void *data, size_t len) {
  if (ctr_crc32c_hardware_available()) return crc32c_hw(crc, (const uint8_t *)data, len);
  return ctr_crc32c_extend_portable(crc, data, len);
}
#else
int ctr_crc32c_hardware_available(void) { return 0; }
uint32_t ctr_crc32c_extend(uint32_t crc, const void *data, size_t len) {
  return ctr_crc32c_extend_portable(crc, data, len);
}
#endif
