# CPack pre-build script (CPACK_PRE_BUILD_SCRIPTS): turns the staged `cmake --install`
# tree into Debian's layout before the .deb is made: man pages gzipped (gzip -9n: no
# name or time stamp inside), the changelog and the copyright file in
# /usr/share/doc/vgpu-patch, the changelog and the operator guide gzipped. A standalone `cmake --install` is left as it is.
set(root "${CPACK_TEMPORARY_DIRECTORY}${CPACK_PACKAGING_INSTALL_PREFIX}")
if(NOT IS_DIRECTORY "${root}/bin")
  message(FATAL_ERROR "deb-layout: no staged install in ${root}")
endif()

file(GLOB_RECURSE manpages "${root}/share/man/*")
foreach(page ${manpages})
  if(NOT page MATCHES "\\.gz$")
    execute_process(COMMAND gzip -9nf "${page}" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "deb-layout: gzip ${page} failed: ${rc}")
    endif()
  endif()
endforeach()

set(doc "${root}/share/doc/${CPACK_PACKAGE_NAME}")
file(MAKE_DIRECTORY "${root}/share/doc" "${doc}")
file(CHMOD "${root}/share/doc" "${doc}" DIRECTORY_PERMISSIONS
     OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
file(COPY ${CPACK_VGPU_DEB_DOC_FILES} DESTINATION "${doc}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# Policy 12.3: documentation over 4 kB is compressed (the operator guide, the changelog).
foreach(f changelog operator-guide.md)
  execute_process(COMMAND gzip -9nf "${doc}/${f}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "deb-layout: gzip ${doc}/${f} failed: ${rc}")
  endif()
endforeach()
