// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls - the /dev/kmtls misc device
 *
 * Applications ask for handshakes through ioctls on this device
 * (include/uapi/linux/kmtls.h): KMTLS_IOC_SUBMIT queues a request for a
 * connected TCP socket, KMTLS_IOC_WAIT blocks for one request, read(2)
 * returns completed ones and poll(2) tells when there are any.
 *
 * Each open file has a struct kmtls_file: it pins the opener's network
 * namespace, where its requests are queued, bounded and counted, and keeps
 * two lists: requests outstanding and requests completed but not yet read.
 * Requests hold a reference to it, so a completion racing with close()
 * always has somewhere to go. Closing the file (the last reference, e.g. at
 * process exit) cancels every outstanding request and drops the unread
 * completions.
 */

#include <linux/errno.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/in.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/nsproxy.h>
#include <linux/poll.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <net/inet_connection_sock.h>
#include <net/net_namespace.h>
#include <net/sock.h>
#include <net/tcp_states.h>

#include "kmtls.h"

/**
 * struct kmtls_file - per-open context of /dev/kmtls
 * @kf_ref: the file's reference and one per request
 * @kf_net: opener's namespace, referenced
 * @kf_lock: protects the lists and @kf_released
 * @kf_wq: woken when a completion arrives
 * @kf_outstanding: requests submitted, not completed (kmtls_req.kr_file_list)
 * @kf_done: completed requests not yet read, oldest first
 * @kf_released: the file is closed: completions are dropped
 */
struct kmtls_file {
	refcount_t		kf_ref;
	struct net		*kf_net;
	spinlock_t		kf_lock;	/* lists, kf_released */
	wait_queue_head_t	kf_wq;
	struct list_head	kf_outstanding;
	struct list_head	kf_done;
	bool			kf_released;
};

static_assert(sizeof(struct kmtls_submit) == KMTLS_SUBMIT_SIZE_VER0);
static_assert(sizeof(struct kmtls_wait) == KMTLS_WAIT_SIZE_VER0);
static_assert(sizeof(struct kmtls_completion) == KMTLS_COMPLETION_SIZE_VER0);

/**
 * kmtls_file_get - Take a reference to a file context
 * @kf: file context
 */
void kmtls_file_get(struct kmtls_file *kf)
{
	refcount_inc(&kf->kf_ref);
}

/**
 * kmtls_file_put - Drop a reference to a file context
 * @kf: file context; freed with the last reference
 */
void kmtls_file_put(struct kmtls_file *kf)
{
	if (!refcount_dec_and_test(&kf->kf_ref))
		return;
	WARN_ON_ONCE(!list_empty(&kf->kf_outstanding) ||
		     !list_empty(&kf->kf_done));
	put_net(kf->kf_net);
	kfree(kf);
}

/**
 * kmtls_file_deliver - Hand a completed request to its submitter
 * @kf: the submitter's file context
 * @req: the request, completed; the caller's reference passes to @kf
 */
void kmtls_file_deliver(struct kmtls_file *kf, struct kmtls_req *req)
{
	bool keep;

	spin_lock(&kf->kf_lock);
	list_del_init(&req->kr_file_list);
	keep = !kf->kf_released;
	if (keep) {
		list_add_tail(&req->kr_file_list, &kf->kf_done);
		/*
		 * Once unlocked, the submitter may read @req, free it and
		 * close the file before the wake-up below: hold @kf for it.
		 */
		kmtls_file_get(kf);
	}
	spin_unlock(&kf->kf_lock);

	if (keep) {
		wake_up_interruptible_poll(&kf->kf_wq, EPOLLIN | EPOLLRDNORM);
		kmtls_file_put(kf);
	} else {
		kmtls_req_put(req);
	}
}

/*
 * Take the completion of request @id (0: the oldest) off the done list.
 * Returns 0 and the request (with the list's reference), -EAGAIN if it is
 * still outstanding, -ENOENT if this file has no such request.
 */
static int kmtls_file_take(struct kmtls_file *kf, u64 id,
			   struct kmtls_req **reqp)
{
	struct kmtls_req *req;
	int ret = -ENOENT;

	spin_lock(&kf->kf_lock);
	list_for_each_entry(req, &kf->kf_done, kr_file_list) {
		if (id && req->kr_result.id != id)
			continue;
		list_del_init(&req->kr_file_list);
		*reqp = req;
		ret = 0;
		goto out_unlock;
	}
	list_for_each_entry(req, &kf->kf_outstanding, kr_file_list) {
		if (!id || req->kr_result.id == id) {
			ret = -EAGAIN;
			break;
		}
	}
out_unlock:
	spin_unlock(&kf->kf_lock);
	return ret;
}

/* Wait condition: request @id is no longer outstanding; *ret as above */
static bool kmtls_file_settled(struct kmtls_file *kf, u64 id,
			       struct kmtls_req **reqp, int *ret)
{
	*ret = kmtls_file_take(kf, id, reqp);
	return *ret != -EAGAIN;
}

/* Put a taken completion back at the head (copy to userspace failed) */
static void kmtls_file_untake(struct kmtls_file *kf, struct kmtls_req *req)
{
	bool keep;

	spin_lock(&kf->kf_lock);
	keep = !kf->kf_released;
	if (keep)
		list_add(&req->kr_file_list, &kf->kf_done);
	spin_unlock(&kf->kf_lock);
	if (!keep)
		kmtls_req_put(req);
}

static bool kmtls_file_has_done(struct kmtls_file *kf)
{
	bool ret;

	spin_lock(&kf->kf_lock);
	ret = !list_empty(&kf->kf_done);
	spin_unlock(&kf->kf_lock);
	return ret;
}

/* ---- KMTLS_IOC_SUBMIT ------------------------------------------------- */

/* Copy an extensible struct that starts with its __u32 size */
static int kmtls_copy_struct(void *dst, size_t ksize, size_t ver0,
			     const void __user *uarg)
{
	u32 usize;

	if (get_user(usize, (const u32 __user *)uarg))
		return -EFAULT;
	if (usize < ver0)
		return -EINVAL;
	if (usize > PAGE_SIZE)
		return -E2BIG;
	return copy_struct_from_user(dst, ksize, uarg, usize);
}

static bool kmtls_string_ok(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

static int kmtls_submit_copy(struct kmtls_submit *sub,
			     const struct kmtls_submit __user *uarg)
{
	int ret;

	ret = kmtls_copy_struct(sub, sizeof(*sub), KMTLS_SUBMIT_SIZE_VER0, uarg);
	if (ret)
		return ret;
	if (sub->flags || sub->reserved)
		return -EINVAL;
	if (sub->role != KMTLS_ROLE_CLIENT && sub->role != KMTLS_ROLE_SERVER)
		return -EINVAL;
	if (!kmtls_string_ok(sub->peer_name, sizeof(sub->peer_name)) ||
	    !kmtls_string_ok(sub->profile, sizeof(sub->profile)))
		return -EINVAL;
	return 0;
}

/*
 * A connected TCP socket over IPv4 or IPv6 without an upper-layer protocol.
 * The socket lock keeps the state and the ULP stable while we look.
 */
static int kmtls_sock_check(struct socket *sock)
{
	struct sock *sk = sock->sk;
	int ret;

	if (!sk || sk->sk_type != SOCK_STREAM ||
	    sk->sk_protocol != IPPROTO_TCP ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6))
		return -EOPNOTSUPP;

	lock_sock(sk);
	ret = -ENOTCONN;
	if (sk->sk_state != TCP_ESTABLISHED)
		goto out;
	ret = -EEXIST;
	if (inet_csk(sk)->icsk_ulp_ops)
		goto out;
	ret = 0;
out:
	release_sock(sk);
	return ret;
}

static void kmtls_file_track(struct kmtls_file *kf, struct kmtls_req *req)
{
	spin_lock(&kf->kf_lock);
	list_add_tail(&req->kr_file_list, &kf->kf_outstanding);
	spin_unlock(&kf->kf_lock);
}

static void kmtls_file_untrack(struct kmtls_file *kf, struct kmtls_req *req)
{
	spin_lock(&kf->kf_lock);
	list_del_init(&req->kr_file_list);
	spin_unlock(&kf->kf_lock);
}

/* Queue a request for a checked socket; see kmtls_dev_submit() */
static int kmtls_dev_submit_sock(struct kmtls_file *kf, struct socket *sock,
				 const struct kmtls_submit *sub,
				 struct kmtls_submit __user *uarg)
{
	struct kmtls_req *req;
	int ret;

	req = kmtls_req_alloc(kf, kf->kf_net, sock, sub);
	if (!req)
		return -ENOMEM;

	ret = put_user(req->kr_result.id, &uarg->id);
	if (ret)
		goto out_put;

	kmtls_file_track(kf, req);
	ret = kmtls_req_submit(req);
	if (ret)
		kmtls_file_untrack(kf, req);
out_put:
	kmtls_req_put(req);
	return ret;
}

/**
 * kmtls_dev_submit - KMTLS_IOC_SUBMIT: queue a handshake request
 * @kf: the caller's file context
 * @uarg: struct kmtls_submit in userspace
 *
 * On success exactly one completion follows, on this file.
 *
 * Return:
 *   %0: queued; @uarg->id holds the request id
 *   %-EFAULT: @uarg is not readable or writable
 *   %-EINVAL: size below KMTLS_SUBMIT_SIZE_VER0, flags, reserved, role, a
 *	string without NUL
 *   %-E2BIG: size above a page, or non-zero bytes past the known struct
 *   %-EBADF: sockfd is not open
 *   %-ENOTSOCK: sockfd is not a socket
 *   %-EOPNOTSUPP: not a TCP socket over IPv4 or IPv6
 *   %-ENOTCONN: the socket is not ESTABLISHED
 *   %-EEXIST: the socket has an upper-layer protocol (TCP_ULP)
 *   %-EBUSY: a request for the socket is outstanding
 *   %-ESRCH: no agent, and net.kmtls.agent_wait_ms is 0
 *   %-EAGAIN: net.kmtls.max_pending requests are queued
 *   %-ENOMEM: out of memory
 */
static int kmtls_dev_submit(struct kmtls_file *kf,
			    struct kmtls_submit __user *uarg)
{
	struct kmtls_submit sub;
	struct socket *sock;
	int ret;

	ret = kmtls_submit_copy(&sub, uarg);
	if (ret)
		return ret;

	sock = sockfd_lookup(sub.sockfd, &ret);
	if (!sock)
		return ret;

	ret = kmtls_sock_check(sock);
	if (!ret)
		ret = kmtls_dev_submit_sock(kf, sock, &sub, uarg);
	sockfd_put(sock);
	return ret;
}

/* ---- KMTLS_IOC_WAIT and read(2) -------------------------------------- */

static int kmtls_wait_copy(struct kmtls_wait *w,
			   const struct kmtls_wait __user *uarg)
{
	int ret;

	ret = kmtls_copy_struct(w, sizeof(*w), KMTLS_WAIT_SIZE_VER0, uarg);
	if (ret)
		return ret;
	if (w->flags || w->reserved)
		return -EINVAL;
	if (w->completion_size < KMTLS_COMPLETION_SIZE_VER0)
		return -EINVAL;
	return 0;
}

/* Copy a completion out, at most @size bytes; consumes @req on success */
static int kmtls_completion_copy(struct kmtls_file *kf, struct kmtls_req *req,
				 void __user *dst, size_t size)
{
	size = min(size, sizeof(req->kr_result));
	if (copy_to_user(dst, &req->kr_result, size)) {
		kmtls_file_untake(kf, req);
		return -EFAULT;
	}
	kmtls_req_put(req);
	return 0;
}

/**
 * kmtls_dev_wait - KMTLS_IOC_WAIT: wait for one request and consume it
 * @kf: the caller's file context
 * @file: the file (for O_NONBLOCK)
 * @uarg: struct kmtls_wait in userspace
 *
 * Return:
 *   %0: the completion was copied to @uarg->completion
 *   %-ENOENT: no such request on this file
 *   %-EAGAIN: O_NONBLOCK and the request is outstanding
 *   %-ERESTARTSYS: a signal arrived (EINTR in userspace); still outstanding
 *   %-EINVAL, %-E2BIG, %-EFAULT: bad argument (the completion, if taken
 *	already, stays for the next wait or read)
 */
static int kmtls_dev_wait(struct kmtls_file *kf, struct file *file,
			  const struct kmtls_wait __user *uarg)
{
	struct kmtls_req *req = NULL;
	struct kmtls_wait w;
	int ret, err;

	ret = kmtls_wait_copy(&w, uarg);
	if (ret)
		return ret;

	ret = kmtls_file_take(kf, w.id, &req);
	if (ret == -EAGAIN && !(file->f_flags & O_NONBLOCK)) {
		err = wait_event_interruptible(kf->kf_wq,
					       kmtls_file_settled(kf, w.id,
								  &req, &ret));
		if (err)
			return err;
	}
	if (ret)
		return ret;
	return kmtls_completion_copy(kf, req, u64_to_user_ptr(w.completion),
				     w.completion_size);
}

/**
 * kmtls_dev_read - read(2): completed requests, oldest first
 * @file: the device file
 * @buf: destination
 * @count: its size
 * @ppos: unused (not seekable)
 *
 * Return: bytes copied, a multiple of sizeof(struct kmtls_completion);
 * %-EINVAL if @count cannot hold one; %-EAGAIN if none is ready and the
 * file is O_NONBLOCK; %-ERESTARTSYS on a signal; %-EFAULT if nothing could
 * be copied.
 */
static ssize_t kmtls_dev_read(struct file *file, char __user *buf,
			      size_t count, loff_t *ppos)
{
	const size_t rec = sizeof(struct kmtls_completion);
	struct kmtls_file *kf = file->private_data;
	struct kmtls_req *req;
	ssize_t done = 0;
	int ret;

	if (count < rec)
		return -EINVAL;

	for (;;) {
		while (count - done >= rec && !kmtls_file_take(kf, 0, &req)) {
			ret = kmtls_completion_copy(kf, req, buf + done, rec);
			if (ret)
				return done ? done : ret;
			done += rec;
		}
		if (done)
			return done;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(kf->kf_wq,
					       kmtls_file_has_done(kf));
		if (ret)
			return ret;
	}
}

/**
 * kmtls_dev_poll - poll(2): is a completion ready?
 * @file: the device file
 * @wait: poll table
 *
 * Return: %EPOLLIN | %EPOLLRDNORM while a completion can be read, else 0.
 */
static __poll_t kmtls_dev_poll(struct file *file, poll_table *wait)
{
	struct kmtls_file *kf = file->private_data;

	poll_wait(file, &kf->kf_wq, wait);
	return kmtls_file_has_done(kf) ? EPOLLIN | EPOLLRDNORM : 0;
}

/* ---- file operations -------------------------------------------------- */

/**
 * kmtls_dev_open - open(2): a file context in the caller's namespace
 * @inode: the device inode
 * @file: the new file
 *
 * Return: %0, or %-ENOMEM.
 */
static int kmtls_dev_open(struct inode *inode, struct file *file)
{
	struct kmtls_file *kf;

	kf = kzalloc(sizeof(*kf), GFP_KERNEL);
	if (!kf)
		return -ENOMEM;

	refcount_set(&kf->kf_ref, 1);
	spin_lock_init(&kf->kf_lock);
	init_waitqueue_head(&kf->kf_wq);
	INIT_LIST_HEAD(&kf->kf_outstanding);
	INIT_LIST_HEAD(&kf->kf_done);
	kf->kf_net = get_net(current->nsproxy->net_ns);
	file->private_data = kf;
	return nonseekable_open(inode, file);
}

/* Pop the first outstanding request, referenced */
static struct kmtls_req *kmtls_file_pop(struct kmtls_file *kf)
{
	struct kmtls_req *req;

	spin_lock(&kf->kf_lock);
	req = list_first_entry_or_null(&kf->kf_outstanding, struct kmtls_req,
				       kr_file_list);
	if (req) {
		list_del_init(&req->kr_file_list);
		refcount_inc(&req->kr_ref);
	}
	spin_unlock(&kf->kf_lock);
	return req;
}

/**
 * kmtls_dev_release - Last close: cancel what is outstanding
 * @inode: the device inode
 * @file: the file
 *
 * From now on completions are dropped. Unread ones go; outstanding requests
 * are cancelled (-ECANCELED), and one that another path completes meanwhile
 * is dropped by kmtls_file_deliver(). The context lives on until its last
 * request is freed.
 *
 * Return: %0.
 */
static int kmtls_dev_release(struct inode *inode, struct file *file)
{
	struct kmtls_file *kf = file->private_data;
	struct kmtls_req *req, *tmp;
	LIST_HEAD(unread);

	spin_lock(&kf->kf_lock);
	kf->kf_released = true;
	list_splice_init(&kf->kf_done, &unread);
	spin_unlock(&kf->kf_lock);

	list_for_each_entry_safe(req, tmp, &unread, kr_file_list) {
		list_del_init(&req->kr_file_list);
		kmtls_req_put(req);
	}
	while ((req = kmtls_file_pop(kf))) {
		kmtls_req_complete(req, -ECANCELED, KMTLS_HOW_CANCEL, NULL);
		kmtls_req_put(req);
	}
	kmtls_file_put(kf);
	return 0;
}

/* Commands match by type, number and direction; the size is in the struct */
static bool kmtls_ioc_is(unsigned int cmd, unsigned int ref)
{
	return _IOC_TYPE(cmd) == _IOC_TYPE(ref) &&
	       _IOC_NR(cmd) == _IOC_NR(ref) &&
	       _IOC_DIR(cmd) == _IOC_DIR(ref);
}

/**
 * kmtls_dev_ioctl - KMTLS_IOC_SUBMIT and KMTLS_IOC_WAIT
 * @file: the device file
 * @cmd: command
 * @arg: user address of its argument
 *
 * Return: as kmtls_dev_submit() and kmtls_dev_wait(); %-ENOTTY for any
 * other command.
 */
static long kmtls_dev_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	struct kmtls_file *kf = file->private_data;
	void __user *uarg = (void __user *)arg;

	if (kmtls_ioc_is(cmd, KMTLS_IOC_SUBMIT))
		return kmtls_dev_submit(kf, uarg);
	if (kmtls_ioc_is(cmd, KMTLS_IOC_WAIT))
		return kmtls_dev_wait(kf, file, uarg);
	return -ENOTTY;
}

static const struct file_operations kmtls_dev_fops = {
	.owner		= THIS_MODULE,
	.open		= kmtls_dev_open,
	.release	= kmtls_dev_release,
	.read		= kmtls_dev_read,
	.poll		= kmtls_dev_poll,
	.unlocked_ioctl	= kmtls_dev_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice kmtls_miscdev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "kmtls",
	.fops	= &kmtls_dev_fops,
	.mode	= 0666,
};

/**
 * kmtls_dev_register - Create /dev/kmtls
 *
 * Return:
 *   %0: the device exists
 *   %-EBUSY: a device named kmtls already exists
 *   other negative errno: misc_register() failed
 */
int kmtls_dev_register(void)
{
	return misc_register(&kmtls_miscdev);
}

/**
 * kmtls_dev_unregister - Remove /dev/kmtls
 */
void kmtls_dev_unregister(void)
{
	misc_deregister(&kmtls_miscdev);
}
