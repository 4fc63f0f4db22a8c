/* FPU/SSE/AVX: values held in registers across the checkpoint. The wait
 * is a raw pause() loop in asm so nothing between the loads and the
 * stores touches those registers (the signal handler's use of them is
 * undone by sigreturn). Built dynamic and static. */
#include <stdint.h>
#include "zdtm.h"

static int have_avx(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_ready(argv);
	static uint8_t in[16][32] __attribute__((aligned(32))), out[16][32] __attribute__((aligned(32)));
	for (int r = 0; r < 16; r++)
		for (int b = 0; b < 32; b++)
			in[r][b] = (uint8_t)(r * 37 + b * 11 + 1);
	double x87_in = 3.14159265358979, x87_out = 0;
	uint64_t g_in = 0x0123456789abcdefULL, g_out = 0;
	int avx = have_avx();
	if (avx) {
		__asm__ volatile(
			"vmovdqa 0(%[i]), %%ymm0\n vmovdqa 32(%[i]), %%ymm1\n vmovdqa 64(%[i]), %%ymm2\n vmovdqa 96(%[i]), %%ymm3\n"
			"vmovdqa 128(%[i]), %%ymm4\n vmovdqa 160(%[i]), %%ymm5\n vmovdqa 192(%[i]), %%ymm6\n vmovdqa 224(%[i]), %%ymm7\n"
			"vmovdqa 256(%[i]), %%ymm8\n vmovdqa 288(%[i]), %%ymm9\n vmovdqa 320(%[i]), %%ymm10\n vmovdqa 352(%[i]), %%ymm11\n"
			"vmovdqa 384(%[i]), %%ymm12\n vmovdqa 416(%[i]), %%ymm13\n vmovdqa 448(%[i]), %%ymm14\n vmovdqa 480(%[i]), %%ymm15\n"
			"fldl %[xi]\n"
			"mov %[gi], %%r12\n"
			"1: mov $34, %%eax\n syscall\n cmpl $0, %[go]\n je 1b\n"
			"vmovdqa %%ymm0, 0(%[o])\n vmovdqa %%ymm1, 32(%[o])\n vmovdqa %%ymm2, 64(%[o])\n vmovdqa %%ymm3, 96(%[o])\n"
			"vmovdqa %%ymm4, 128(%[o])\n vmovdqa %%ymm5, 160(%[o])\n vmovdqa %%ymm6, 192(%[o])\n vmovdqa %%ymm7, 224(%[o])\n"
			"vmovdqa %%ymm8, 256(%[o])\n vmovdqa %%ymm9, 288(%[o])\n vmovdqa %%ymm10, 320(%[o])\n vmovdqa %%ymm11, 352(%[o])\n"
			"vmovdqa %%ymm12, 384(%[o])\n vmovdqa %%ymm13, 416(%[o])\n vmovdqa %%ymm14, 448(%[o])\n vmovdqa %%ymm15, 480(%[o])\n"
			"fstpl %[xo]\n"
			"mov %%r12, %[go_out]\n"
			"vzeroupper\n"
			: [xo] "=m"(x87_out), [go_out] "=m"(g_out)
			: [i] "r"(in), [o] "r"(out), [xi] "m"(x87_in), [gi] "r"(g_in), [go] "m"(zdtm_go)
			: "rax", "rcx", "r11", "r12", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
			  "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st");
	} else {  /* SSE only: the low halves */
		__asm__ volatile(
			"movdqa 0(%[i]), %%xmm0\n movdqa 32(%[i]), %%xmm1\n movdqa 64(%[i]), %%xmm2\n movdqa 96(%[i]), %%xmm3\n"
			"fldl %[xi]\n mov %[gi], %%r12\n"
			"1: mov $34, %%eax\n syscall\n cmpl $0, %[go]\n je 1b\n"
			"movdqa %%xmm0, 0(%[o])\n movdqa %%xmm1, 32(%[o])\n movdqa %%xmm2, 64(%[o])\n movdqa %%xmm3, 96(%[o])\n"
			"fstpl %[xo]\n mov %%r12, %[go_out]\n"
			: [xo] "=m"(x87_out), [go_out] "=m"(g_out)
			: [i] "r"(in), [o] "r"(out), [xi] "m"(x87_in), [gi] "r"(g_in), [go] "m"(zdtm_go)
			: "rax", "rcx", "r11", "r12", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "st");
	}
	int regs = avx ? 16 : 4, width = avx ? 32 : 16;
	for (int r = 0; r < regs; r++)
		for (int b = 0; b < width; b++)
			if (out[r][b] != in[r][b])
				fail("%s%d byte %d: %u != %u", avx ? "ymm" : "xmm", r, b, out[r][b], in[r][b]);
	if (x87_out != x87_in)
		fail("x87 st0: %.17g != %.17g", x87_out, x87_in);
	if (g_out != g_in)
		fail("r12: %#llx != %#llx", (unsigned long long)g_out, (unsigned long long)g_in);
	pass();
}
