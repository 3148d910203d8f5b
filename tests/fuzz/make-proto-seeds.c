/* Writes the wire-protocol fuzz seeds (fuzz-proto.c) into DIR: valid frames made from
 * shims/remote/proto.h's own structs, so the seeds follow the contract when it changes.
 *   make-proto-seeds DIR
 * Each file is one conversation direction: requests a client sends, or replies a daemon
 * sends. DIR/.complete marks a finished run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static unsigned char out[1 << 16];
static size_t used;

static void put(const void *p, size_t n)
{
    if (used + n > sizeof(out)) {
        fprintf(stderr, "make-proto-seeds: seed too large\n");
        exit(1);
    }
    memcpy(out + used, p, n);
    used += n;
}

static void request(uint16_t op, struct vr_args a, const void *bulk, size_t n)
{
    static uint32_t id;
    struct vr_hdr h = {.magic = VR_MAGIC, .op = op, .id = ++id, .len = sizeof(a), .bulk = n};
    put(&h, sizeof(h));
    put(&a, sizeof(a));
    put(bulk, n);
}

static void reply(uint16_t op, struct vr_ret r, const void *bulk, size_t n)
{
    static uint32_t id;
    struct vr_hdr h = {
        .magic = VR_MAGIC, .op = op, .flags = VR_F_REPLY, .id = ++id, .len = sizeof(r), .bulk = n};
    put(&h, sizeof(h));
    put(&r, sizeof(r));
    put(bulk, n);
}

static void save(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(out, 1, used, f) != used || fclose(f)) {
        perror(path);
        exit(1);
    }
    used = 0;
}

static const char hello_text[] = "visible=0\nprogram=ollama\n";
static const char ptx[] = ".version 7.0\n.target sm_52\n.address_size 64\n"
                          ".visible .entry k(.param .u64 p)\n{\n\tret;\n}\n";

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make-proto-seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    unsigned char bytes[300];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (unsigned char)(i * 37 + 11);

    /* A client's session: HELLO, discovery, a context, memory, copies, a module, a launch. */
    request(VR_HELLO, (struct vr_args){{1, 1, VR_API_CUDA, 4242, 0}}, hello_text,
            sizeof(hello_text) - 1);
    request(VR_CU_INIT, (struct vr_args){{0}}, NULL, 0);
    request(VR_CU_DEVICE_GET_COUNT, (struct vr_args){{0}}, NULL, 0);
    request(VR_CU_DEVICE_GET_ATTRIBUTE, (struct vr_args){{75, 0}}, NULL, 0);
    request(VR_CU_PRIMARY_CTX_RETAIN, (struct vr_args){{0}}, NULL, 0);
    request(VR_CU_MEM_ALLOC, (struct vr_args){{1, 4096}}, NULL, 0);
    request(VR_CU_MEMCPY_HTOD, (struct vr_args){{1, 0x7f0000000000, 0, 0}}, bytes, sizeof(bytes));
    request(VR_CU_MEMCPY_DTOH, (struct vr_args){{1, 0x7f0000000000, 300, 0, 0}}, NULL, 0);
    request(VR_CU_MEMSET, (struct vr_args){{1, 0x7f0000000000, 0xab, 4, 64, 0, 0}}, NULL, 0);
    request(VR_CU_MODULE_LOAD, (struct vr_args){{1}}, ptx, sizeof(ptx));
    request(VR_CU_MODULE_GET_FUNCTION, (struct vr_args){{1, 1}}, "k", 2);
    uint64_t arg = 0x7f0000000000;
    request(VR_CU_LAUNCH_KERNEL,
            (struct vr_args){{1, 1, 1 | 1ull << 32, 1, 32 | 1ull << 32, 1, 0, 0}}, &arg,
            sizeof(arg));
    request(VR_CU_STREAM_SYNCHRONIZE, (struct vr_args){{1, 0}}, NULL, 0);
    request(VR_PING, (struct vr_args){{64}}, bytes, 64);
    save(dir, "requests-session.bin");

    request(VR_HELLO, (struct vr_args){{1, 1, VR_API_NVML, 4242, 0}}, "program=nvidia-smi\n", 19);
    request(VR_NVML_INIT, (struct vr_args){{0}}, NULL, 0);
    request(VR_NVML_DEVICE_INFO, (struct vr_args){{0}}, NULL, 0);
    request(VR_NVML_DEVICE_MEMORY, (struct vr_args){{0}}, NULL, 0);
    request(0x7abc, (struct vr_args){{0}}, "abc", 3); /* an op this version does not know */
    save(dir, "requests-nvml.bin");

    request(VR_CU_DEVICE_GET_BY_PCI_BUS_ID, (struct vr_args){{0}}, "0000:01:00.0", 13);
    request(VR_CU_MODULE_GET_GLOBAL, (struct vr_args){{1, 1}}, "table", 6);
    save(dir, "requests-names.bin");

    /* The daemon's side. */
    static const char desc[] = "vgpu-hostd 0.1.0 sim: 1 device";
    reply(VR_HELLO, (struct vr_ret){0, 0, {1, VR_CAP_SIM, 1}}, desc, sizeof(desc) - 1);
    reply(VR_CU_INIT, (struct vr_ret){0}, NULL, 0);
    reply(VR_CU_DEVICE_GET_NAME, (struct vr_ret){0}, "vGPU (simulated)", 17);
    reply(VR_CU_DEVICE_GET_UUID, (struct vr_ret){0}, bytes, 16);
    reply(VR_CU_MEMCPY_DTOH, (struct vr_ret){0}, bytes, sizeof(bytes));
    struct vr_param params[2] = {{0, 8}, {8, 4}};
    reply(VR_CU_MODULE_GET_FUNCTION, (struct vr_ret){0, 0, {1, 2}}, params, sizeof(params));
    reply(VR_CU_LAUNCH_KERNEL, (struct vr_ret){801}, NULL, 0);
    reply(VR_PING, (struct vr_ret){0}, bytes, 40);
    save(dir, "replies-session.bin");

    struct vr_nvml_device dev = {.name = "vGPU (simulated)",
                                 .uuid = "GPU-01234567-89ab-cdef-0123-456789abcdef",
                                 .pci_bus_id = "00000000:01:00.0",
                                 .pci_bus = 1,
                                 .pci_device_id = 0x268410de,
                                 .cc_major = 8,
                                 .cc_minor = 9,
                                 .total_memory = 24ull << 30};
    reply(VR_NVML_INIT, (struct vr_ret){0}, NULL, 0);
    reply(VR_NVML_SYSTEM_DRIVER_VERSION, (struct vr_ret){0}, "580.65.06", 10);
    reply(VR_NVML_DEVICE_INFO, (struct vr_ret){0}, &dev, sizeof(dev));
    reply(VR_NVML_DEVICE_MEMORY, (struct vr_ret){0, 0, {24ull << 30, 23ull << 30, 1ull << 30}},
          NULL, 0);
    reply(VR_HELLO, (struct vr_ret){VR_E_VERSION}, NULL, 0);
    save(dir, "replies-nvml.bin");

    /* Module images alone, for vr_image_fits: PTX, a fatbin header with its payload, and
     * an ELF with one section and its section headers. */
    put(ptx, sizeof(ptx));
    save(dir, "image-ptx.bin");
    unsigned char fat[64] = {0x50, 0xed, 0x55, 0xba, 1, 0, 16, 0, 48};
    put(fat, sizeof(fat));
    save(dir, "image-fatbin.bin");
    unsigned char elf[0x50 + 2 * 0x40] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    elf[0x28] = 0x50;               /* shoff */
    elf[0x34] = 0x40;               /* ehsize */
    elf[0x3a] = 0x40;               /* shentsize */
    elf[0x3c] = 2;                  /* shnum */
    elf[0x50 + 0x40 + 0x18] = 0x40; /* the section's offset */
    elf[0x50 + 0x40 + 0x20] = 16;   /* and size */
    put(elf, sizeof(elf));
    save(dir, "image-elf.bin");

    save(dir, ".complete");
    return 0;
}
