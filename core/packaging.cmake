# The Debian package (`cpack -G DEB` in a build tree): one package, hq, holding everything
# `cmake --install` installs (programs, libhq and libhqrt, inspector modules, headers, hq.pc, man
# pages, bash completion, the Python package, the demo's samples), under /usr.
# Every installed file finds the others relative to itself (RUNPATH $ORIGIN/..., hq.pc's
# ${pcfiledir}, the Python package's _install.py), so the prefix the build was configured with
# does not matter: the package installs the same relative layout under /usr.
set(CPACK_PACKAGE_NAME hq)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "hq")
set(CPACK_PACKAGE_CONTACT "hq maintainers <hq@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "post-training quantization toolchain and diagnostics for integer CNN accelerators")
set(CPACK_PACKAGE_DESCRIPTION
    "hq parses ONNX models, quantizes them with a model script, emulates them (float and\n\
bit-exact integer), compiles them for its deploy runtime libhqrt and estimates their\n\
throughput. hq-diag looks at a quantized model and its calibration data and says what most\n\
likely hurts accuracy, with the model-script lines that would fix it. Includes libhq, libhqrt,\n\
their headers and hq.pc, the inspector modules, man pages, bash completion, the Python\n\
package hq (ctypes over libhq) and the sample model in /usr/share/hq/samples.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_PACKAGE_NAME hq)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # hq_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The libraries' Depends are computed from the ELF files when dpkg-shlibdeps (dpkg-dev) is
# there; the Python package is ctypes and numpy, which no ELF file names.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3, python3-numpy")
find_program(HQ_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(HQ_DPKG_SHLIBDEPS)
  # (libhq.so.0 and libhqrt.so.0 are the package's own: dpkg-shlibdeps finds them in the
  # staged tree through the programs' RUNPATH $ORIGIN/...)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  message(STATUS "dpkg-shlibdeps not found (dpkg-dev): the .deb's Depends will list only "
                 "${CPACK_DEBIAN_PACKAGE_DEPENDS}")
endif()
# a shlibs file for libhq and libhqrt, so that packages built against them depend on hq
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)

include(CPack)
