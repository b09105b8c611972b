# cmake/install.cmake — what `cmake --install` puts under the prefix:
#   lib/libhologram.so*, lib/libhologram.a      the shared and the static library
#   include/hologram/hologram.h                  the public header
#   lib/cmake/hologram/hologramConfig.cmake      find_package(hologram): hologram::hologram,
#     + ConfigVersion, Targets                   hologram::hologram_static
#   lib/pkgconfig/hologram.pc                    pkg-config hologram (--static: Libs.private)
# The dependencies of both come from HG_LINK_LIBS (top-level CMakeLists.txt): each item is
# mapped below to its find_dependency() line and its pkg-config flags; an item without a
# mapping stops the configuration, so the list cannot drift from what gets installed.
include(CMakePackageConfigHelpers)

set(HG_FIND_DEPENDENCIES "")
set(HG_PC_LIBS_PRIVATE "")
foreach(item IN LISTS HG_LINK_LIBS)
  if(item STREQUAL "Threads::Threads")
    string(APPEND HG_FIND_DEPENDENCIES "find_dependency(Threads)\n")
    string(APPEND HG_PC_LIBS_PRIVATE " -pthread")
  elseif(item STREQUAL "cjson")
    string(APPEND HG_FIND_DEPENDENCIES "find_dependency(cJSON)\n")
    string(APPEND HG_PC_LIBS_PRIVATE " -lcjson")
  elseif(item STREQUAL "LLVM")
    string(APPEND HG_FIND_DEPENDENCIES
           "find_dependency(LLVM ${LLVM_VERSION_MAJOR}.${LLVM_VERSION_MINOR} CONFIG)\n")
    foreach(dir IN LISTS LLVM_LIBRARY_DIRS)
      string(APPEND HG_PC_LIBS_PRIVATE " -L${dir}")
    endforeach()
    string(APPEND HG_PC_LIBS_PRIVATE " -lLLVM")
  elseif(item STREQUAL "m")
    string(APPEND HG_PC_LIBS_PRIVATE " -lm")
  else()
    message(FATAL_ERROR "cmake/install.cmake: HG_LINK_LIBS item '${item}' has no "
                        "find_dependency/pkg-config mapping; add one")
  endif()
endforeach()
string(STRIP "${HG_PC_LIBS_PRIVATE}" HG_PC_LIBS_PRIVATE)

set(HG_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/hologram)
set_target_properties(hologram_static PROPERTIES EXPORT_NAME hologram_static)
install(TARGETS hologram hologram_static EXPORT hologramTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/hologram/hologram.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hologram)
install(EXPORT hologramTargets NAMESPACE hologram:: DESTINATION ${HG_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/hologramConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/hologramConfig.cmake
                              INSTALL_DESTINATION ${HG_CMAKE_DIR})
# 0.x: a minor version may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/hologramConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/hologramConfig.cmake
              ${CMAKE_BINARY_DIR}/hologramConfigVersion.cmake
        DESTINATION ${HG_CMAKE_DIR})
# hologram.pc: configured at install time, for the prefix given then (cmake --install
# --prefix P), and installed like the rest (DESTDIR included).
install(CODE "
  set(CMAKE_INSTALL_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(CMAKE_INSTALL_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  set(HG_PC_LIBS_PRIVATE \"${HG_PC_LIBS_PRIVATE}\")
  configure_file(\"${CMAKE_CURRENT_LIST_DIR}/hologram.pc.in\"
                 \"${CMAKE_BINARY_DIR}/hologram.pc\" @ONLY)
  file(INSTALL \"${CMAKE_BINARY_DIR}/hologram.pc\"
       DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\")")
