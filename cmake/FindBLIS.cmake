# FindBLIS.cmake - finds BLIS (Debian ships no blis.pc).
#
# Prefers the pthread variant Debian installs under <libdir>/blis-pthread and
# <includedir>/<multiarch>/blis-pthread; set BLIS_ROOT to point at another build.
# Defines BLIS_FOUND, BLIS_INCLUDE_DIRS, BLIS_LIBRARIES, BLIS_VERSION and the
# imported target BLIS::BLIS; when the static libblis.a sits beside it, also
# BLIS_STATIC_LIBRARY and BLIS::static (the tests need it: only the static library
# exports the lookup of every configuration's kernels).
set(_blis_hint_dirs ${BLIS_ROOT} $ENV{BLIS_ROOT})
set(_blis_arch ${CMAKE_LIBRARY_ARCHITECTURE})

find_path(BLIS_INCLUDE_DIR blis.h
  HINTS ${_blis_hint_dirs}
  PATH_SUFFIXES include include/blis
    include/${_blis_arch}/blis-pthread include/${_blis_arch}/blis-openmp
    include/${_blis_arch}/blis-serial include/${_blis_arch})
find_library(BLIS_LIBRARY NAMES blis
  HINTS ${_blis_hint_dirs}
  PATH_SUFFIXES lib lib/${_blis_arch}/blis-pthread lib/${_blis_arch}/blis-openmp
    lib/${_blis_arch}/blis-serial lib/${_blis_arch}
  NO_DEFAULT_PATH)
if(NOT BLIS_LIBRARY)
  find_library(BLIS_LIBRARY NAMES blis
    PATHS /usr/lib/${_blis_arch}/blis-pthread /usr/lib/${_blis_arch}/blis-openmp
    PATH_SUFFIXES lib)
endif()

set(BLIS_VERSION "unknown")
if(BLIS_INCLUDE_DIR AND EXISTS "${BLIS_INCLUDE_DIR}/blis.h")
  file(STRINGS "${BLIS_INCLUDE_DIR}/blis.h" _blis_ver REGEX "^#define BLIS_VERSION_STRING")
  if(_blis_ver MATCHES "\"([^\"]+)\"")
    set(BLIS_VERSION "${CMAKE_MATCH_1}")
  endif()
endif()
# Debian's header carries no version string; its build configuration does.
if(BLIS_VERSION STREQUAL "unknown")
  file(GLOB _blis_cfgs /usr/share/blis*/config.mk)
  foreach(_cfg ${_blis_cfgs})
    file(STRINGS "${_cfg}" _blis_ver REGEX "^VERSION[ \t]*:=")
    if(_blis_ver MATCHES ":=[ \t]*([0-9][^ \t]*)")
      set(BLIS_VERSION "${CMAKE_MATCH_1}")
      break()
    endif()
  endforeach()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(BLIS REQUIRED_VARS BLIS_LIBRARY BLIS_INCLUDE_DIR)

if(BLIS_FOUND)
  set(BLIS_INCLUDE_DIRS ${BLIS_INCLUDE_DIR})
  set(BLIS_LIBRARIES ${BLIS_LIBRARY})
  get_filename_component(_blis_dir "${BLIS_LIBRARY}" DIRECTORY)
  if(EXISTS "${_blis_dir}/libblis.a")
    set(BLIS_STATIC_LIBRARY "${_blis_dir}/libblis.a")
    if(NOT TARGET BLIS::static)
      add_library(BLIS::static STATIC IMPORTED)
      set_target_properties(BLIS::static PROPERTIES
        IMPORTED_LOCATION "${BLIS_STATIC_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${BLIS_INCLUDE_DIR}"
        INTERFACE_LINK_LIBRARIES "m;pthread")
    endif()
  endif()
  if(NOT TARGET BLIS::BLIS)
    add_library(BLIS::BLIS UNKNOWN IMPORTED)
    set_target_properties(BLIS::BLIS PROPERTIES
      IMPORTED_LOCATION "${BLIS_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${BLIS_INCLUDE_DIR}")
  endif()
endif()
mark_as_advanced(BLIS_INCLUDE_DIR BLIS_LIBRARY)
