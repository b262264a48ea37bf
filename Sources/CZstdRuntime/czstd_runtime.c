#include "czstd_runtime.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*p_createDCtx)(void);
static size_t (*p_freeDCtx)(void *);
static size_t (*p_decompressStream)(void *, berth_zstd_out_buffer *, berth_zstd_in_buffer *);
static unsigned (*p_isError)(size_t);
static const char *(*p_getErrorName)(size_t);
static void *(*p_createCCtx)(void);
static size_t (*p_freeCCtx)(void *);
static size_t (*p_CCtx_setParameter)(void *, int, int);
static size_t (*p_compressBound)(size_t);
static size_t (*p_compress2)(void *, void *, size_t, const void *, size_t);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;
static char load_error[512];

#define BIND(ptr, name)                                                                  \
    do {                                                                                 \
        *(void **)(&ptr) = dlsym(handle, name);                                          \
        if (ptr == NULL) {                                                               \
            snprintf(load_error, sizeof load_error, "libzstd has no symbol %s", name);   \
            return;                                                                      \
        }                                                                                \
    } while (0)

static void load_once(void) {
    // BERTH_ZSTD_LIBRARY names another library file (tests use it to see the error without libzstd).
    const char *chosen = getenv("BERTH_ZSTD_LIBRARY");
    void *handle = NULL;
    if (chosen != NULL && chosen[0] != '\0') {
        handle = dlopen(chosen, RTLD_NOW | RTLD_LOCAL);
    } else {
        handle = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) handle = dlopen("libzstd.so", RTLD_NOW | RTLD_LOCAL);
    }
    if (handle == NULL) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "%s", why ? why : "libzstd.so.1 not found");
        return;
    }
    BIND(p_createDCtx, "ZSTD_createDCtx");
    BIND(p_freeDCtx, "ZSTD_freeDCtx");
    BIND(p_decompressStream, "ZSTD_decompressStream");
    BIND(p_isError, "ZSTD_isError");
    BIND(p_getErrorName, "ZSTD_getErrorName");
    BIND(p_createCCtx, "ZSTD_createCCtx");
    BIND(p_freeCCtx, "ZSTD_freeCCtx");
    BIND(p_CCtx_setParameter, "ZSTD_CCtx_setParameter");
    BIND(p_compressBound, "ZSTD_compressBound");
    BIND(p_compress2, "ZSTD_compress2");
    loaded = 1;
}

int berth_zstd_load(void) {
    pthread_once(&once, load_once);
    return loaded;
}

const char *berth_zstd_load_error(void) {
    berth_zstd_load();
    return loaded ? NULL : load_error;
}

void *berth_zstd_create_dctx(void) { return p_createDCtx(); }
size_t berth_zstd_free_dctx(void *dctx) { return p_freeDCtx(dctx); }
size_t berth_zstd_decompress_stream(void *dctx, berth_zstd_out_buffer *output, berth_zstd_in_buffer *input) {
    return p_decompressStream(dctx, output, input);
}
unsigned berth_zstd_is_error(size_t code) { return p_isError(code); }
const char *berth_zstd_error_name(size_t code) { return p_getErrorName(code); }

void *berth_zstd_create_cctx(void) { return p_createCCtx(); }
size_t berth_zstd_free_cctx(void *cctx) { return p_freeCCtx(cctx); }
size_t berth_zstd_cctx_set_parameter(void *cctx, int parameter, int value) {
    return p_CCtx_setParameter(cctx, parameter, value);
}
size_t berth_zstd_compress_bound(size_t size) { return p_compressBound(size); }
size_t berth_zstd_compress2(void *cctx, void *dst, size_t dstCapacity, const void *src, size_t srcSize) {
    return p_compress2(cctx, dst, dstCapacity, src, srcSize);
}
