// libzstd loaded at run time (dlopen), so that building Berth needs no zstd headers (libzstd-dev):
// only scanning a zstd layer needs the shared library, which Debian installs by default (libzstd1).
// The declarations below mirror zstd.h's stable ABI (zstd 1.4+) for the few functions Berth uses.
#ifndef CZSTD_RUNTIME_H
#define CZSTD_RUNTIME_H

#include <stddef.h>

typedef struct { const void *src; size_t size; size_t pos; } berth_zstd_in_buffer;
typedef struct { void *dst; size_t size; size_t pos; } berth_zstd_out_buffer;

/// zstd.h's ZSTD_c_compressionLevel and ZSTD_c_checksumFlag.
#define BERTH_ZSTD_C_COMPRESSION_LEVEL 100
#define BERTH_ZSTD_C_CHECKSUM_FLAG 201

/// Loads libzstd once (libzstd.so.1, then libzstd.so; or the file named by BERTH_ZSTD_LIBRARY);
/// 1 when every function was found, else 0.
int berth_zstd_load(void);
/// Why the last load failed (dlerror's text), or NULL.
const char *berth_zstd_load_error(void);

// Each of these requires a successful berth_zstd_load().
void *berth_zstd_create_dctx(void);
size_t berth_zstd_free_dctx(void *dctx);
size_t berth_zstd_decompress_stream(void *dctx, berth_zstd_out_buffer *output, berth_zstd_in_buffer *input);
unsigned berth_zstd_is_error(size_t code);
const char *berth_zstd_error_name(size_t code);

void *berth_zstd_create_cctx(void);
size_t berth_zstd_free_cctx(void *cctx);
size_t berth_zstd_cctx_set_parameter(void *cctx, int parameter, int value);
size_t berth_zstd_compress_bound(size_t size);
size_t berth_zstd_compress2(void *cctx, void *dst, size_t dstCapacity, const void *src, size_t srcSize);

#endif
