# tests/leakcheck.cmake — valgrind (memcheck) runs of the public-API tests, included from
# tests/CMakeLists.txt after the test executables are defined.
#
#   leakcheck_test_ops     test_ops with lengths <= 1025 (HG_TEST_MAX_LEN), both engines
#   leakcheck_test_errors  test_errors
#
# Definite and indirect leaks and memory errors fail the test; "still reachable" blocks
# (LLVM's one-time allocations) do not.  Valgrind 3.19 cannot decode AVX-512, which
# -march=native emits on this CPU, and it cannot run next to LeakSanitizer, so the tests are
# registered only in a build configured for it:
#   cmake -DHG_NATIVE=OFF -DHG_LEAK_CHECK=OFF -DHG_SANITIZE=OFF ...
# (the JIT then targets the CPU that valgrind reports, which has no AVX-512 either).
find_program(HG_VALGRIND valgrind)
if(HG_VALGRIND AND NOT HG_NATIVE AND NOT HG_SANITIZE AND NOT HG_LEAK_CHECK)
  foreach(name test_ops test_errors)
    add_test(NAME leakcheck_${name}
             COMMAND ${HG_VALGRIND} --leak-check=full --errors-for-leak-kinds=definite,indirect
                     --error-exitcode=1 $<TARGET_FILE:${name}>)
    set_tests_properties(leakcheck_${name} PROPERTIES
                         TIMEOUT 900
                         LABELS leakcheck FIXTURES_REQUIRED kernel_cache
                         ENVIRONMENT "HG_TEST_MAX_LEN=1025;${HG_TEST_CACHE_ENV}")
  endforeach()
else()
  message(STATUS "valgrind leak check not registered (needs valgrind, HG_NATIVE=OFF, "
                 "HG_LEAK_CHECK=OFF, HG_SANITIZE=OFF)")
endif()
