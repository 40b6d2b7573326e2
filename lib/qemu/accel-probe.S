/*
 * A boot sector that proves an accelerator really runs a guest: from
 * real mode it switches straight to 64-bit long mode (PAE paging, one
 * 2 MiB identity page) and writes 0x2a to isa-debug-exit at 0x501, so
 * QEMU exits with status (0x2a << 1) | 1 = 85.  A KVM that hangs once
 * the guest leaves real mode, or crawls there, never gets there in time.
 */
	.code16
	.text
	.globl _start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp

	/* Clear 0x1000-0x3fff for PML4, PDPT and PD. */
	movw	$0x1000, %di
	movw	$0x1800, %cx
	cld
	rep stosw

	movl	$0x2003, 0x1000		/* PML4[0] -> PDPT, present|rw */
	movl	$0x3003, 0x2000		/* PDPT[0] -> PD */
	movl	$0x0083, 0x3000		/* PD[0]: 2 MiB page at 0 */

	lgdtl	gdtr

	movl	%cr4, %eax
	orl	$0x20, %eax		/* PAE */
	movl	%eax, %cr4
	movl	$0x1000, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx	/* EFER */
	rdmsr
	orl	$0x100, %eax		/* LME */
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax	/* PG | PE */
	movl	%eax, %cr0
	ljmpl	$0x08, $long_mode

	.code64
long_mode:
	/*
	 * Some nested hosts enter long mode but then barely execute guest
	 * code: make it run 20M iterations, a few ms on a working KVM.
	 */
	movl	$20000000, %ecx
2:	decl	%ecx
	jnz	2b
	movw	$0x501, %dx
	movb	$0x2a, %al
	outb	%al, %dx
1:	hlt
	jmp	1b

	.p2align 3
gdt:
	.quad	0
	.quad	0x00209a0000000000	/* 64-bit code */
	.quad	0x0000920000000000	/* data */
gdt_end:
gdtr:
	.word	gdt_end - gdt - 1
	.long	gdt

	.org	510
	.byte	0x55, 0xaa
