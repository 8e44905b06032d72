# NANOSHIM_STATIC: the shim and nanoctl linked statically, against glibc's libc.a and
# Debian's own archives (libprotobuf-c.a from libprotobuf-c-dev, libyajl_s.a from
# libyajl-dev). Non-PIE, so nothing is relocated at start: the protobuf-c descriptors and
# every other table of pointers stay clean pages of the file, shared by every shim,
# instead of copies written into each one (bench/MEMORY.md has the measurements).
# nanoshimd stays dynamic (libcap-ng's and libnl-3's objects reach getpwuid and
# getaddrinfo), linked with their archives (libcap-ng.a, libnl-3.a, libnl-route-3.a)
# like everything else in this build.
#
# None of these programs may call what static glibc can only do by loading a shared
# object at run time (NSS: getpwnam, getaddrinfo, ...; dlopen, iconv_open): the link
# would warn about it, and nanoshim_program() turns that warning into an error.

# nanoshim_static_pkg(PREFIX MODULES m... ARCHIVES libx.a...) — PkgConfig::PREFIX, as
# pkg_check_modules(IMPORTED_TARGET) would make it, but global and on the archives. The
# subdirectories' own pkg_check_modules(... IMPORTED_TARGET) then find it and keep it.
function(nanoshim_static_pkg prefix)
  cmake_parse_arguments(S "" "" "MODULES;ARCHIVES" ${ARGN})
  pkg_check_modules(${prefix} REQUIRED ${S_MODULES})
  set(libs)
  foreach(a ${S_ARCHIVES})
    string(MAKE_C_IDENTIFIER "NANOSHIM_ARCHIVE_${a}" var)
    find_library(${var} NAMES ${a})
    if(NOT ${var})
      message(FATAL_ERROR "NANOSHIM_STATIC: ${a} not found (scripts/install-deps.sh installs "
                          "the -dev packages that carry it; or configure with -DNANOSHIM_STATIC=OFF)")
    endif()
    list(APPEND libs ${${var}})
  endforeach()
  add_library(PkgConfig::${prefix} INTERFACE IMPORTED GLOBAL)
  set_target_properties(PkgConfig::${prefix} PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${${prefix}_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES "${libs}")
endfunction()

nanoshim_static_pkg(PROTOBUF_C MODULES libprotobuf-c ARCHIVES libprotobuf-c.a)
nanoshim_static_pkg(YAJL MODULES yajl ARCHIVES libyajl_s.a)
nanoshim_static_pkg(CAPNG MODULES libcap-ng ARCHIVES libcap-ng.a)
# libnl-route-3 stands on libnl-3: in that order on a static link line
nanoshim_static_pkg(LIBNL MODULES libnl-3.0 libnl-route-3.0
  ARCHIVES libnl-route-3.a libnl-3.a)
