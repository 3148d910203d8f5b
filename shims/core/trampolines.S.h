/* clang-format off */ /* (assembler for the C preprocessor, not C) */
/* trampolines.S.h: the x86-64 code behind a shim's forwarded exports, for a .S file.
 * Before including it, define VGPU_TABLE (the generated table header: one
 * VGPU_ENTRY(FWD|IMPL, index, name) per export), VGPU_SLOTS, VGPU_CALLS,
 * VGPU_ENTRIES (the address of every export by index, for cuGetProcAddress) and
 * VGPU_RESOLVE (the shim's C resolver, `void *f(unsigned index)`).
 *
 * A forwarded export costs one counter increment and one indirect jump:
 *     name:  incq calls[shard][i]; jmp *VGPU_SLOTS+8*i(%rip)
 * The counters are sharded by the caller's stack address (threads have their own
 * stacks), so threads calling the same entry point rarely fight over one cache line;
 * the increment is not atomic (a statistic: a rare lost count is the price of never
 * locking the bus). It clobbers only %r10 and %r11, which no C call passes anything in.
 * Its slot starts at a lazy stub that pushes i and enters lazy_common, which saves the
 * argument registers, asks the resolver for the target, restores them and jumps: the
 * caller's arguments and return address reach the target untouched. */

#include "dispatch-shards.h"

/* VGPU_TABLE_SIZE, for the counter layout. */
#define VGPU_ENTRY(kind, index, name)
#include VGPU_TABLE
#undef VGPU_ENTRY

/* The forwarded export: counts and jumps through its slot. */
.macro VGPU_TRAMPOLINE name, index
    .globl \name
    .type \name, @function
    .p2align 4
\name:
    .cfi_startproc
    movq %rsp, %r11                   /* the shard: bits of the stack address, */
    shrq $VGPU_SHARD_SHIFT, %r11      /* different for each thread's stack */
    andq $(VGPU_CALL_SHARDS - 1), %r11
    imulq $(8 * VGPU_TABLE_SIZE), %r11, %r11
    leaq VGPU_CALLS(%rip), %r10
    incq 8*\index(%r10,%r11)
    jmp *VGPU_SLOTS+8*\index(%rip)
    .cfi_endproc
    .size \name, .-\name
.endm

/* The first target of a forwarded export's slot. */
.macro VGPU_LAZY index
    .p2align 3
.Lvgpu_lazy_\index:
    pushq $\index
    jmp .Lvgpu_lazy_common
.endm

/* Saves the integer and vector argument registers (and %rax, the vector count of
 * variadic calls), calls VGPU_RESOLVE(index) with a 16-byte aligned stack, restores,
 * drops the index and jumps to the answer. */
.macro VGPU_LAZY_COMMON
    .p2align 4
.Lvgpu_lazy_common:
    .cfi_startproc
    .cfi_adjust_cfa_offset 8          /* the pushed index */
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    movq %rsp, %rbp
    .cfi_def_cfa_register %rbp
    subq $192, %rsp
    andq $-16, %rsp
    movq %rdi, 0(%rsp)
    movq %rsi, 8(%rsp)
    movq %rdx, 16(%rsp)
    movq %rcx, 24(%rsp)
    movq %r8, 32(%rsp)
    movq %r9, 40(%rsp)
    movq %rax, 48(%rsp)
    movq %r10, 56(%rsp)
    movdqa %xmm0, 64(%rsp)
    movdqa %xmm1, 80(%rsp)
    movdqa %xmm2, 96(%rsp)
    movdqa %xmm3, 112(%rsp)
    movdqa %xmm4, 128(%rsp)
    movdqa %xmm5, 144(%rsp)
    movdqa %xmm6, 160(%rsp)
    movdqa %xmm7, 176(%rsp)
    movl 8(%rbp), %edi
    call VGPU_RESOLVE
    movq %rax, %r11
    movq 0(%rsp), %rdi
    movq 8(%rsp), %rsi
    movq 16(%rsp), %rdx
    movq 24(%rsp), %rcx
    movq 32(%rsp), %r8
    movq 40(%rsp), %r9
    movq 48(%rsp), %rax
    movq 56(%rsp), %r10
    movdqa 64(%rsp), %xmm0
    movdqa 80(%rsp), %xmm1
    movdqa 96(%rsp), %xmm2
    movdqa 112(%rsp), %xmm3
    movdqa 128(%rsp), %xmm4
    movdqa 144(%rsp), %xmm5
    movdqa 160(%rsp), %xmm6
    movdqa 176(%rsp), %xmm7
    movq %rbp, %rsp
    popq %rbp
    .cfi_restore %rbp
    .cfi_def_cfa %rsp, 16
    addq $8, %rsp
    .cfi_def_cfa_offset 8
    jmp *%r11
    .cfi_endproc
.endm

    .text
#define VGPU_ENTRY(kind, index, name) VGPU_ENTRY_##kind(index, name)

/* The exports. */
#define VGPU_ENTRY_FWD(index, name) VGPU_TRAMPOLINE name, index;
#define VGPU_ENTRY_IMPL(index, name)
#include VGPU_TABLE
#undef VGPU_ENTRY_FWD

/* Their lazy stubs, and the code they share. */
#define VGPU_ENTRY_FWD(index, name) VGPU_LAZY index;
#include VGPU_TABLE
#undef VGPU_ENTRY_FWD
    VGPU_LAZY_COMMON

/* The slots: a forwarded entry starts at its lazy stub, an implemented one at NULL
 * (vgpu_dispatch_real() fills it when the C code first needs the backend's). */
    .data
    .p2align 6
    .globl VGPU_SLOTS
    .hidden VGPU_SLOTS
    .type VGPU_SLOTS, @object
VGPU_SLOTS:
#define VGPU_ENTRY_FWD(index, name) .quad .Lvgpu_lazy_##index;
#undef VGPU_ENTRY_IMPL
#define VGPU_ENTRY_IMPL(index, name) .quad 0;
#include VGPU_TABLE
    .size VGPU_SLOTS, .-VGPU_SLOTS

/* Every export's address, by index (read-only after relocation). */
    .section .data.rel.ro, "aw"
    .p2align 3
    .globl VGPU_ENTRIES
    .hidden VGPU_ENTRIES
    .type VGPU_ENTRIES, @object
VGPU_ENTRIES:
#undef VGPU_ENTRY_FWD
#undef VGPU_ENTRY_IMPL
#define VGPU_ENTRY_FWD(index, name) .quad name;
#define VGPU_ENTRY_IMPL(index, name) .quad name;
#include VGPU_TABLE
    .size VGPU_ENTRIES, .-VGPU_ENTRIES

    .section .note.GNU-stack, "", @progbits
