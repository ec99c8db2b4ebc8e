# shim/module.mk — builds and installs the sqltrace shim (libsqltrace.so.0,
# libsqltrace.a, header, pkg-config file, Python module) and its test
# programs. Included by the top Makefile; paths are relative to the top.
#
#   $(BUILD)/shim/libsqltrace.so.0      shared library (soname libsqltrace.so.0)
#   $(BUILD)/shim/libsqltrace.so        symlink to it, for -lsqltrace
#   $(BUILD)/shim/libsqltrace.a         static variant (same PIC object)
#   $(BUILD)/shim/tests/shim_threads    4 threads, own ids (links the .so)
#   $(BUILD)/shim/tests/shim_threads_static   the same, shim linked in
#   $(BUILD)/shim/tests/shim_bench      set/clear cost (links the .so)
#   $(BUILD)/shim/tests/shim_bench_static     the same, shim linked in
#
# The shim is never built with SAN=1's sanitizers: it is linked into traced
# programs, and what it costs there is what it must be measured as.
#
# make install [PREFIX=/usr/local] [DESTDIR=] [LIBDIR=] [INCLUDEDIR=]
#              [PKGCONFIGDIR=] [PYTHONDIR=]

SHIM_VERSION := 0.1.0
SHIM_SONAME  := libsqltrace.so.0
SHIM_DIR     := $(BUILD)/shim
SHIM_OBJ     := $(SHIM_DIR)/obj/sqltrace.o
SHIM_SO0     := $(SHIM_DIR)/$(SHIM_SONAME)
SHIM_SO      := $(SHIM_DIR)/libsqltrace.so
SHIM_A       := $(SHIM_DIR)/libsqltrace.a
SHIM_TESTS   := $(addprefix $(SHIM_DIR)/tests/,shim_threads shim_threads_static \
                  shim_bench shim_bench_static)

# -mno-red-zone: a probe site may be turned into a call by the kernel (see
# the DESIGN comment in sqltrace.c). -mtls-dialect=gnu2: TLS descriptors, so
# reaching the thread-local id is a load, not a __tls_get_addr call, while
# the library stays loadable by dlopen (Python's ctypes) with no static-TLS
# reservation. Both are x86-64 options.
SHIM_ARCH_CFLAGS :=
ifeq ($(firstword $(subst -, ,$(shell $(CC) -dumpmachine))),x86_64)
SHIM_ARCH_CFLAGS := -mno-red-zone -mtls-dialect=gnu2
endif
SHIM_CFLAGS := -O2 -g -fPIC -fvisibility=hidden $(SHIM_ARCH_CFLAGS) $(WARN)

$(SHIM_OBJ): shim/sqltrace.c shim/sqltrace.h
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(SHIM_CFLAGS) -Ishim -c $< -o $@

$(SHIM_SO0): $(SHIM_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) -shared -Wl,-soname,$(SHIM_SONAME) -Wl,-z,defs -Wl,-z,relro,-z,now \
		-Wl,--as-needed $^ -o $@

$(SHIM_SO): $(SHIM_SO0)
	$(Q)ln -sf $(SHIM_SONAME) $@

$(SHIM_A): $(SHIM_OBJ)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# Test programs: never sanitized (they are traced). The dynamic ones find
# the library next door through their rpath; the _static ones carry the
# shim in the executable, the other layout sqltrace-bpf must discover.
SHIM_TEST_CFLAGS := -O2 -g $(WARN) -Ishim

$(SHIM_DIR)/tests/%: shim/tests/%.c shim/sqltrace.h $(SHIM_SO)
	@mkdir -p $(dir $@)
	$(call msg,TARGET,$@)
	$(Q)$(CC) $(SHIM_TEST_CFLAGS) $< -L$(SHIM_DIR) -lsqltrace \
		-Wl,-rpath,'$$ORIGIN/..' -lsqlite3 -lpthread -o $@

$(SHIM_DIR)/tests/%_static: shim/tests/%.c shim/sqltrace.h $(SHIM_A)
	@mkdir -p $(dir $@)
	$(call msg,TARGET,$@)
	$(Q)$(CC) $(SHIM_TEST_CFLAGS) $< $(SHIM_A) -lsqlite3 -lpthread -o $@

.PHONY: shim shim-install
shim: $(SHIM_SO) $(SHIM_A) $(SHIM_TESTS)

MODULE_ALL       += $(SHIM_SO) $(SHIM_A) $(SHIM_TESTS)
MODULE_TEST_DEPS += $(SHIM_SO) $(SHIM_A) $(SHIM_TESTS)

# ---- install -----------------------------------------------------------------
# Debian's pkg-config searches $(PREFIX)/lib/pkgconfig for /usr/local and
# /usr, and its loader searches /usr/local/lib (ldconfig is run after a real
# install so the new soname is in the cache). Other prefixes need
# PKG_CONFIG_PATH and LD_LIBRARY_PATH (or an rpath); see shim/README.md.
PREFIX       ?= /usr/local
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# The Python module goes where that python3 looks for it: Debian's
# /usr/lib/python3/dist-packages for PREFIX=/usr, else
# $(PREFIX)/lib/python3.X/{dist,site}-packages (dist- on Debian), or
# $(PREFIX)/lib/python3/dist-packages when no python3 answers.
# Deferred (=) so python3 only runs when installing.
SHIM_PYTHON  ?= $(firstword $(wildcard /usr/bin/python3) python3)
SHIM_PYSUBDIR = $(shell $(SHIM_PYTHON) -c 'import sys; print("python%d.%d/%s" % ( \
	sys.version_info[0], sys.version_info[1], "dist-packages" if any( \
	p.endswith("dist-packages") for p in sys.path) else "site-packages"))' 2>/dev/null)
PYTHONDIR    ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/python3/dist-packages,$(PREFIX)/lib/$(or \
	$(SHIM_PYSUBDIR),python3/dist-packages))

install: shim-install

shim-install: $(SHIM_SO) $(SHIM_A) shim/sqltrace.pc.in shim/python/sqltrace.py
	$(call msg,INSTALL,libsqltrace -> $(DESTDIR)$(LIBDIR))
	$(Q)install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(PYTHONDIR)
	$(Q)install -m 0755 $(SHIM_SO0) $(DESTDIR)$(LIBDIR)/$(SHIM_SONAME)
	$(Q)ln -sf $(SHIM_SONAME) $(DESTDIR)$(LIBDIR)/libsqltrace.so
	$(Q)install -m 0644 $(SHIM_A) $(DESTDIR)$(LIBDIR)/libsqltrace.a
	$(Q)install -m 0644 shim/sqltrace.h $(DESTDIR)$(INCLUDEDIR)/sqltrace.h
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(SHIM_VERSION)|g' \
		shim/sqltrace.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/sqltrace.pc
	$(Q)chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/sqltrace.pc
	$(Q)sed -e 's|^_INSTALL_LIBDIR = None$$|_INSTALL_LIBDIR = "$(LIBDIR)"|' \
		shim/python/sqltrace.py > $(DESTDIR)$(PYTHONDIR)/sqltrace.py
	$(Q)chmod 0644 $(DESTDIR)$(PYTHONDIR)/sqltrace.py
	$(call msg,INSTALL,sqltrace.py -> $(DESTDIR)$(PYTHONDIR))
	$(Q)if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; \
		then ldconfig; fi
