/* Identifier rules for container ids, exec ids and namespaces: containerd's
 * (github.com/containerd/containerd/identifiers), so anything accepted here is
 * one safe path component — no "/", no "..", no leading dot. */
#pragma once

#include "status.h"

/* containerd's maxLength */
#define BUNDLE_ID_MAX 76

/* The pattern containerd documents, quoted in error messages. */
#define BUNDLE_ID_PATTERN "^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"

/* 0 if id matches BUNDLE_ID_PATTERN and is at most BUNDLE_ID_MAX bytes long;
 * otherwise -EINVAL, and st (if not NULL) gets InvalidArgument with a message
 * naming kind ("container id", "exec id", "namespace") and quoting id. */
int bundle_validate_id(const char *kind, const char *id, struct ttrpc_status *st);
