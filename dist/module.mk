# dist/module.mk — installing sqltrace-bpf as a system tool, and its Debian
# package. Included by the top Makefile; paths are relative to the top.
#
#   make install   [PREFIX=/usr/local] [DESTDIR=] [SBINDIR=] [MANDIR=]
#                  [BASHCOMPDIR=] [SYSTEMDUNITDIR=] [SYSCONFDIR=/etc]
#       the tool ($(SBINDIR)/sqltrace-bpf), the man pages, bash completion,
#       the systemd units, /etc/sqltrace/sqltrace.conf (only when there is
#       none: it is the admin's), and the shim (shim/module.mk). Every file
#       written is listed in $(DATADIR)/sqltrace-bpf/installed-files.
#   make uninstall [PREFIX=...] [DESTDIR=]
#       removes exactly the files that list names (and the list).
#   make deb
#       $(BUILD)/deb/sqltrace-bpf_VERSION-REVISION_ARCH.deb: PREFIX=/usr,
#       runtime dependencies from dpkg-shlibdeps, checked with lintian by
#       tests/e2e/test_install.py.
#
# Man pages are hand-written man(7) in man/; units (@SBINDIR@ replaced by
# the tool's installed path), completion and the default config in dist/.

PKG_VERSION    := 0.1.0
DEB_REVISION   := 1
PREFIX         ?= /usr/local
SBINDIR        ?= $(PREFIX)/sbin
DATADIR        ?= $(PREFIX)/share
MANDIR         ?= $(DATADIR)/man
BASHCOMPDIR    ?= $(DATADIR)/bash-completion/completions
SYSCONFDIR     ?= /etc
# systemd reads /usr/lib/systemd/system and /usr/local/lib/systemd/system.
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/systemd/system,$(PREFIX)/lib/systemd/system)

MAN_PAGES   := $(wildcard man/*.[1-8])
UNIT_INS    := $(wildcard dist/systemd/*.service.in)
MANIFEST    := $(DATADIR)/sqltrace-bpf/installed-files

.PHONY: tool-install uninstall deb

install: tool-install

# One shell: the list of what was written grows as it is written (a failed
# install leaves a list of what it did write, for uninstall).
tool-install: $(TOOL) $(UNIT_INS) shim-install
	$(call msg,INSTALL,sqltrace-bpf -> $(DESTDIR)$(SBINDIR))
	$(Q)set -e; d='$(DESTDIR)'; m="$$d$(MANIFEST)"; \
	install -d "$$d$(DATADIR)/sqltrace-bpf"; : > "$$m"; \
	put() { install -D -m "$$1" "$$2" "$$d$$3"; echo "$$3" >> "$$m"; }; \
	put 0755 $(TOOL) $(SBINDIR)/sqltrace-bpf; \
	for p in $(MAN_PAGES); do \
		s=$${p##*.}; put 0644 $$p $(MANDIR)/man$$s/$$(basename $$p); \
	done; \
	put 0644 dist/bash-completion/sqltrace-bpf $(BASHCOMPDIR)/sqltrace-bpf; \
	for u in $(UNIT_INS); do \
		n=$$(basename $$u .in); install -d "$$d$(SYSTEMDUNITDIR)"; \
		sed -e 's|@SBINDIR@|$(SBINDIR)|g' $$u > "$$d$(SYSTEMDUNITDIR)/$$n"; \
		chmod 0644 "$$d$(SYSTEMDUNITDIR)/$$n"; echo "$(SYSTEMDUNITDIR)/$$n" >> "$$m"; \
	done; \
	if [ ! -e "$$d$(SYSCONFDIR)/sqltrace/sqltrace.conf" ]; then \
		install -d -m 0755 "$$d$(SYSCONFDIR)/sqltrace"; \
		put 0644 dist/etc/sqltrace.conf $(SYSCONFDIR)/sqltrace/sqltrace.conf; \
	fi; \
	for f in $(LIBDIR)/$(SHIM_SONAME) $(LIBDIR)/libsqltrace.so $(LIBDIR)/libsqltrace.a \
		$(INCLUDEDIR)/sqltrace.h $(PKGCONFIGDIR)/sqltrace.pc $(PYTHONDIR)/sqltrace.py; do \
		echo "$$f" >> "$$m"; \
	done; \
	echo "$(MANIFEST)" >> "$$m"
	$(Q)if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && [ -d /run/systemd/system ]; then \
		systemctl daemon-reload || true; fi

uninstall:
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)set -e; d='$(DESTDIR)'; m="$$d$(MANIFEST)"; \
	if [ ! -f "$$m" ]; then echo "nothing to uninstall: no $$m"; exit 0; fi; \
	while IFS= read -r f; do \
		case "$$f" in /*) ;; *) echo "skipping '$$f' (not absolute)"; continue ;; esac; \
		rm -f -- "$$d$$f"; \
	done < "$$m"; \
	rm -f -- "$$m"; \
	rmdir "$$d$(DATADIR)/sqltrace-bpf" "$$d$(SYSCONFDIR)/sqltrace" 2>/dev/null || true
	$(Q)if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
		ldconfig; fi

# ---- Debian package ------------------------------------------------------------
DEB_ARCH     := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_MULTIARCH := $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
DEB_ROOT     := $(BUILD)/deb/root
DEB_FILE     := $(BUILD)/deb/sqltrace-bpf_$(PKG_VERSION)-$(DEB_REVISION)_$(DEB_ARCH).deb
# When dpkg-shlibdeps cannot answer: what Debian 12 names them.
DEB_DEPENDS_FALLBACK := libbpf1, libc6 (>= 2.34), libcapstone4, libcjson1, libcurl4, libelf1, \
	libmicrohttpd12, libsqlite3-0, zlib1g

deb: $(DEB_FILE)

$(DEB_FILE): $(TOOL) $(SHIM_SO) $(SHIM_A) $(MAN_PAGES) $(UNIT_INS) dist/debian/control.in \
		dist/debian/copyright dist/debian/changelog dist/debian/postinst dist/debian/postrm \
		dist/debian/prerm dist/etc/sqltrace.conf dist/bash-completion/sqltrace-bpf
	$(call msg,DEB,$@)
	$(Q)rm -rf $(DEB_ROOT) && mkdir -p $(DEB_ROOT)
	$(Q)$(MAKE) --no-print-directory install BUILD=$(BUILD) DESTDIR=$(abspath $(DEB_ROOT)) \
		PREFIX=/usr LIBDIR=/usr/lib/$(DEB_MULTIARCH) PYTHONDIR=/usr/lib/python3/dist-packages \
		SBINDIR=/usr/sbin >/dev/null
	$(Q)set -e; r=$(DEB_ROOT); \
	rm -rf $$r/usr/share/sqltrace-bpf; \
	strip --strip-unneeded --remove-section=.comment --remove-section=.note \
		$$r/usr/sbin/sqltrace-bpf $$r/usr/lib/$(DEB_MULTIARCH)/$(SHIM_SONAME); \
	strip --strip-debug --remove-section=.comment $$r/usr/lib/$(DEB_MULTIARCH)/libsqltrace.a; \
	chmod 0644 $$r/usr/lib/$(DEB_MULTIARCH)/$(SHIM_SONAME); \
	gzip -9n $$r/usr/share/man/man*/*; \
	install -d $$r/usr/share/doc/sqltrace-bpf $$r/DEBIAN; \
	install -m 0644 dist/debian/copyright $$r/usr/share/doc/sqltrace-bpf/copyright; \
	gzip -9nc dist/debian/changelog > $$r/usr/share/doc/sqltrace-bpf/changelog.Debian.gz; \
	chmod 0644 $$r/usr/share/doc/sqltrace-bpf/changelog.Debian.gz; \
	for s in postinst postrm prerm; do install -m 0755 dist/debian/$$s $$r/DEBIAN/$$s; done; \
	echo /etc/sqltrace/sqltrace.conf > $$r/DEBIAN/conffiles; \
	echo "libsqltrace 0 sqltrace-bpf (>= $(PKG_VERSION))" > $$r/DEBIAN/shlibs; \
	echo "activate-noawait ldconfig" > $$r/DEBIAN/triggers; \
	deps=$$(tmp=$$(mktemp -d) && mkdir $$tmp/debian && \
		printf 'Source: sqltrace-bpf\n\nPackage: sqltrace-bpf\nArchitecture: any\n' > $$tmp/debian/control && \
		cd $$tmp && dpkg-shlibdeps -O $(abspath $(DEB_ROOT))/usr/sbin/sqltrace-bpf \
		$(abspath $(DEB_ROOT))/usr/lib/$(DEB_MULTIARCH)/$(SHIM_SONAME) 2>/dev/null \
		| sed -n 's/^shlibs:Depends=//p'; rm -rf $$tmp); \
	[ -n "$$deps" ] || deps='$(DEB_DEPENDS_FALLBACK)'; \
	size=$$(du -sk --exclude=DEBIAN $$r | cut -f1); \
	sed -e 's|@VERSION@|$(PKG_VERSION)-$(DEB_REVISION)|' -e 's|@ARCH@|$(DEB_ARCH)|' -e "s|@DEPENDS@|$$deps|" \
		-e "s|@SIZE@|$$size|" dist/debian/control.in > $$r/DEBIAN/control; \
	(cd $$r && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | \
		xargs md5sum) > $$r/DEBIAN/md5sums; \
	chmod 0644 $$r/DEBIAN/control $$r/DEBIAN/conffiles $$r/DEBIAN/shlibs $$r/DEBIAN/triggers \
		$$r/DEBIAN/md5sums; \
	find $$r -type d -exec chmod 0755 {} +
	$(Q)dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $@ >/dev/null
