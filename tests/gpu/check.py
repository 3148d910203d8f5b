"""GPU check (tests/gpu/run.sh): a PyTorch matmul and a CuPy kernel, with their
results checked against the CPU and their time measured. With --mode shim it also
requires the shims' call counters to be non-zero, torch.cuda.mem_get_info() to show
the memory limit, allocations past the limit to fail (PyTorch, CuPy, and the driver
API's VMM path in ggml-cuda's order), and prints the busiest counters; with
--baseline it prints the overhead against the direct run. Exit 1 on the first failed
check."""
import argparse
import ctypes
import json
import sys
import time

import cupy
import numpy
import torch

UNITS = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}


def size(text):
    digits = text.rstrip("KMGTiB")
    return int(digits) << UNITS[text[len(digits):]]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def timed(fn, runs):
    fn()  # warm-up: module loading, allocator pools, cuBLAS handles
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        cupy.cuda.runtime.deviceSynchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_check():
    a = torch.randn(1024, 1024, dtype=torch.float64)
    b = torch.randn(1024, 1024, dtype=torch.float64)
    got = (a.cuda() @ b.cuda()).cpu()
    if not torch.allclose(got, a @ b, rtol=1e-9, atol=1e-9):
        fail("PyTorch matmul on the GPU differs from the CPU")
    x = torch.randn(4096, 4096, device="cuda")

    def run():  # one result alive at a time: the run must fit the shim's memory limit
        for _ in range(20):
            x @ x
    return run


SQUARE = cupy.ElementwiseKernel("float32 x", "float32 y", "y = x * x + 1.0f", "vgpu_square")


def cupy_check():
    host = numpy.arange(1 << 20, dtype=numpy.float32) / 1024
    got = cupy.asnumpy(SQUARE(cupy.asarray(host)))
    if not numpy.allclose(got, host * host + 1):
        fail("CuPy kernel result differs from NumPy")
    x = cupy.arange(1 << 24, dtype=cupy.float32)

    def run():
        for _ in range(50):
            SQUARE(x)
    return run


def shim_counters():
    lib = ctypes.CDLL("libcuda.so.1")  # the shim, loaded first under that soname
    try:
        stat = lib.vgpu_cuda_stat
    except AttributeError:
        fail("libcuda.so.1 in this process is not the vgpu shim")
    stat.argtypes = [ctypes.c_uint, ctypes.POINTER(ctypes.c_char_p),
                     ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_ulong)]
    name, calls, unserved = ctypes.c_char_p(), ctypes.c_ulong(), ctypes.c_ulong()
    counts, i = {}, 0
    while stat(i, ctypes.byref(name), ctypes.byref(calls), ctypes.byref(unserved)):
        if calls.value or unserved.value:
            counts[name.value.decode()] = (calls.value, unserved.value)
        i += 1
    return counts


def limit_checks(limit):
    free, total = torch.cuda.mem_get_info()
    print(f"torch.cuda.mem_get_info(): free {free} total {total} (limit {limit})")
    if total != limit:
        fail(f"mem_get_info total {total} is not the limit {limit}")
    if free > limit:
        fail(f"mem_get_info free {free} is above the limit {limit}")
    try:
        torch.empty(limit + (1 << 20), dtype=torch.uint8, device="cuda")
    except torch.cuda.OutOfMemoryError as e:
        print("allocation past the limit failed as it must: " + str(e).splitlines()[0])
    else:
        fail("an allocation past the limit succeeded")
    try:
        cupy.empty(limit + (1 << 20), dtype=cupy.uint8)
    except cupy.cuda.memory.OutOfMemoryError:
        print("CuPy allocation past the limit failed as it must")
    else:
        fail("a CuPy allocation past the limit succeeded")


class Location(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("id", ctypes.c_int)]


class AllocFlags(ctypes.Structure):
    _fields_ = [("compressionType", ctypes.c_ubyte), ("gpuDirectRDMACapable", ctypes.c_ubyte),
                ("usage", ctypes.c_ushort), ("reserved", ctypes.c_ubyte * 4)]


class AllocProp(ctypes.Structure):  # CUmemAllocationProp
    _fields_ = [("type", ctypes.c_int), ("requestedHandleTypes", ctypes.c_int),
                ("location", Location), ("win32HandleMetaData", ctypes.c_void_p),
                ("allocFlags", AllocFlags)]


def vmm_checks(limit):
    """ggml-cuda's VMM pool through the driver API: reserve address space, then
    cuMemCreate + cuMemMap + cuMemRelease chunk after chunk. The shim must hold each
    chunk while it is mapped, refuse the chunk that would pass the limit, and give
    everything back at cuMemUnmap."""
    torch.cuda.empty_cache()
    cupy.get_default_memory_pool().free_all_blocks()
    cu = ctypes.CDLL("libcuda.so.1")
    u64, sz = ctypes.c_ulonglong, ctypes.c_size_t

    def call(name, *args):
        return getattr(cu, name)(*args)

    ctx = ctypes.c_void_p()
    if call("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), 0) or call("cuCtxSetCurrent", ctx):
        fail("cannot make the primary context current")
    free, total = sz(), sz()
    call("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
    headroom = free.value
    prop = AllocProp(type=1, location=Location(type=1, id=0))  # pinned, device 0
    gran = sz()
    if call("cuMemGetAllocationGranularity", ctypes.byref(gran), ctypes.byref(prop), 0):
        fail("cuMemGetAllocationGranularity failed")
    chunk = (256 << 20) // gran.value * gran.value or gran.value
    va = u64()
    if call("cuMemAddressReserve", ctypes.byref(va), sz(2 * limit), sz(0), u64(0), u64(0)):
        fail("cuMemAddressReserve failed")
    mapped, last = 0, 0
    while mapped <= 2 * limit - chunk:
        h = u64()
        last = call("cuMemCreate", ctypes.byref(h), sz(chunk), ctypes.byref(prop), u64(0))
        if last:
            break
        if call("cuMemMap", u64(va.value + mapped), sz(chunk), sz(0), h, u64(0)):
            fail("cuMemMap failed")
        call("cuMemRelease", h)  # ggml: the handle is not needed after mapping
        mapped += chunk
    print(f"VMM: {mapped >> 20} MiB mapped in {chunk >> 20} MiB chunks of a "
          f"{headroom >> 20} MiB headroom; next cuMemCreate: {last}")
    if last != 2:
        fail(f"cuMemCreate past the limit returned {last}, not CUDA_ERROR_OUT_OF_MEMORY")
    if mapped > headroom or mapped + chunk <= headroom:
        fail(f"{mapped} bytes mapped against a headroom of {headroom}")
    call("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
    if free.value > headroom - mapped:
        fail(f"cuMemGetInfo free {free.value} after mapping {mapped} of {headroom}")
    if call("cuMemUnmap", va, sz(mapped)) or call("cuMemAddressFree", va, sz(2 * limit)):
        fail("cuMemUnmap/cuMemAddressFree failed")
    call("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
    if free.value < headroom:
        fail(f"cuMemUnmap gave back {free.value} of {headroom}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["direct", "shim"], required=True)
    ap.add_argument("--limit")
    ap.add_argument("--baseline")
    args = ap.parse_args()
    print(f"device: {torch.cuda.get_device_name(0)}", file=sys.stderr)
    times = {"matmul_s": timed(matmul_check(), 5)}
    torch.cuda.empty_cache()  # what PyTorch's allocator keeps counts against the limit
    times["cupy_s"] = timed(cupy_check(), 5)
    if args.mode == "direct":
        print(json.dumps(times))
        return
    torch.cuda.empty_cache()
    cupy.get_default_memory_pool().free_all_blocks()
    limit_checks(size(args.limit))
    vmm_checks(size(args.limit))
    counts = shim_counters()
    busiest = sorted(counts.items(), key=lambda kv: -kv[1][0])[:12]
    print("shim call counters (calls, unserved), busiest first:")
    for n, (c, u) in busiest:
        print(f"  {n:40} {c:10} {u:6}")
    for need in ("cuInit", "cuGetProcAddress_v2", "cuMemAlloc_v2", "cuLaunchKernel"):
        if need not in counts and need + "_ptsz" not in counts:
            fail(f"the shim counted no call to {need}")
    if args.baseline:
        base = json.load(open(args.baseline))
        for k in times:
            print(f"{k}: direct {base[k] * 1e3:.3f} ms, shim {times[k] * 1e3:.3f} ms, "
                  f"overhead {100 * (times[k] / base[k] - 1):+.2f}%")
    print("GPU check: all checks passed")


if __name__ == "__main__":
    main()
