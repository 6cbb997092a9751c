/* SPDX-License-Identifier: GPL-2.0-or-later WITH Linux-syscall-note */
/*
 * kmtls user API: the names shared by kmtls.ko, kmtlsd, the tools and the
 * tests. The generic-netlink attributes and the /dev/kmtls ioctls are added
 * with the kernel-service feature.
 */
#ifndef _UAPI_LINUX_KMTLS_H
#define _UAPI_LINUX_KMTLS_H

#define KMTLS_DEV_NAME		"kmtls"		/* /dev/kmtls */
#define KMTLS_GENL_NAME		"kmtls"
#define KMTLS_GENL_VERSION	1
#define KMTLS_GENL_MCGRP_AGENTS	"agents"

#endif /* _UAPI_LINUX_KMTLS_H */
