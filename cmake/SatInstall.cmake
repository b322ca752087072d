# SatInstall.cmake - installs the header, the libraries, libsat.pc and the CMake package.
include(CMakePackageConfigHelpers)

install(FILES include/sat.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS sat EXPORT libsatTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(SAT_BUILD_STATIC)
  install(TARGETS sat_static EXPORT libsatTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
