# SatInstall.cmake - installs the header(s), the libraries, libsat.pc and the CMake package.
#
#   <prefix>/include/sat.h (+ sat.hpp when the C++ wrapper exists)
#   <libdir>/libsat.so.X.Y.Z, libsat.so.X (SONAME), libsat.so, libsat.a
#   <libdir>/pkgconfig/libsat.pc
#   <libdir>/cmake/libsat/{libsatConfig,libsatConfigVersion,libsatTargets*,FindBLIS}.cmake
#
# Everything installed is relative to the install prefix, so `cmake --install build
# --prefix DIR` gives a working tree anywhere (the tests stage one in <build>/stage).
include(CMakePackageConfigHelpers)

set(SAT_CMAKE_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/libsat)

install(FILES ${PROJECT_SOURCE_DIR}/include/sat.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT devel)
if(EXISTS ${PROJECT_SOURCE_DIR}/include/sat.hpp)
  install(FILES ${PROJECT_SOURCE_DIR}/include/sat.hpp
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT devel)
endif()

install(TARGETS sat EXPORT libsatTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT devel
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT devel
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
if(SAT_BUILD_STATIC)
  # The BUILD_INTERFACE include of lib/ (for the unit tests) is not exported: only
  # $<INSTALL_INTERFACE:include> reaches libsatTargets.cmake.
  install(TARGETS sat_static EXPORT libsatTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT devel)
endif()

# --- CMake package: find_package(libsat CONFIG) -> libsat::sat, libsat::sat_static ---
install(EXPORT libsatTargets NAMESPACE libsat::
  DESTINATION ${SAT_CMAKE_PACKAGE_DIR} COMPONENT devel)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/libsatConfig.cmake.in
  ${PROJECT_BINARY_DIR}/libsatConfig.cmake
  INSTALL_DESTINATION ${SAT_CMAKE_PACKAGE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/libsatConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/libsatConfig.cmake
  ${PROJECT_BINARY_DIR}/libsatConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/FindBLIS.cmake
  ${CMAKE_CURRENT_LIST_DIR}/FindProtobufC.cmake
  DESTINATION ${SAT_CMAKE_PACKAGE_DIR} COMPONENT devel)

# --- pkg-config: libsat.pc ---
# libdir/includedir are written relative to ${prefix}; prefix itself is the prefix the
# tree is installed to (cmake --install --prefix may differ from CMAKE_INSTALL_PREFIX),
# so the file is produced at install time.
foreach(_kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_kind}}")
    set(SAT_PC_${_kind} "${CMAKE_INSTALL_${_kind}}")
  else()
    set(SAT_PC_${_kind} "\${prefix}/${CMAKE_INSTALL_${_kind}}")
  endif()
endforeach()
# Libs.private: what a static link of libsat.a needs. BLIS lives in a private directory
# on Debian (<libdir>/blis-pthread), so it is given as -L<dir> -lblis (a -L path, not the
# .so itself, so that `--static` links can pick libblis.a from the same directory).
get_filename_component(_sat_blis_dir "${BLIS_LIBRARY}" DIRECTORY)
get_filename_component(_sat_blis_name "${BLIS_LIBRARY}" NAME_WE)
string(REGEX REPLACE "^lib" "" _sat_blis_name "${_sat_blis_name}")
set(SAT_PC_LIBS_PRIVATE "-L${_sat_blis_dir} -l${_sat_blis_name} -lprotobuf-c -lpthread -lm -lz")
# Two steps: at configure time everything but the prefix is filled in (the prefix stays
# a placeholder), at install time the prefix actually installed to is.
set(SAT_PC_PREFIX "@SAT_PC_PREFIX@")
configure_file(${CMAKE_CURRENT_LIST_DIR}/libsat.pc.in ${PROJECT_BINARY_DIR}/libsat.pc.in @ONLY)
install(CODE "set(SAT_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
configure_file(\"${PROJECT_BINARY_DIR}/libsat.pc.in\" \"${PROJECT_BINARY_DIR}/libsat.pc\" @ONLY)"
  COMPONENT devel)
install(FILES ${PROJECT_BINARY_DIR}/libsat.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT devel)
