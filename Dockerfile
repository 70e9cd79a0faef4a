# syntax=docker/dockerfile:1
# The renewer function's image (Fn's docker runtime: `fn build` / `fn deploy` use this file, see
# func.yaml; `docker build -t acme-renewer .` works too). The build context is what .dockerignore
# allows: func.py, renewer/, the locks and build/prune_site.py — nothing else.
#
# The image holds the hash-checked closure of requirements.lock, less everything the function's
# code can never import (build/prune_site.py: the oci services it does not use, fdk's test and
# build dependencies, the libraries' own test suites), precompiled, run by a non-root user.
# make bench-image builds the same site-packages without Docker and measures it.

# ---------------------------------------------------------------- builder: the venv
FROM python:3.11.13-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# Compilers only here, for a platform where a pinned package ships no wheel (every pin has
# x86_64 manylinux wheels); the final stage copies the built venv and never sees them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

# /python: where Fn's own Python images keep their venv.
RUN python -m venv /python
COPY requirements.lock /build/requirements.lock
RUN /python/bin/pip install --prefer-binary --require-hashes --no-deps -r /build/requirements.lock \
 && /python/bin/pip check

COPY func.py /function/func.py
COPY renewer/ /function/renewer/
COPY build/prune_site.py /build/prune_site.py
# Derived from what /function imports; pip and setuptools go too (nothing imports them), and
# python-pkcs11, which oci imports for its HSM signer only if it is there (we sign with
# resource principals): ~50 ms of every cold start and 8 MB.
RUN /python/bin/python /build/prune_site.py /python/lib/python3.11/site-packages \
        --app /function --module fdk.scripts.fdk --lazy oci --drop python-pkcs11 \
        --scripts /python/bin \
 && /python/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        /function /python/lib/python3.11/site-packages

# ---------------------------------------------------------------- final: no build tools
FROM python:3.11.13-slim-bookworm

RUN groupadd --system --gid 1000 fn \
 && useradd --system --uid 1000 --gid fn --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin fn

COPY --from=builder /python /python
COPY --from=builder /function /function

# The oci SDK imports its services on first use; the pruning relies on that (see --lazy).
ENV PATH=/python/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OCI_PYTHON_SDK_LAZY_IMPORTS_DISABLED=False

WORKDIR /function
USER 1000:1000
ENTRYPOINT ["/python/bin/fdk", "/function/func.py", "handler"]
