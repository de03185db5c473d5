//! Components built against an earlier 0.2.x contract keep running on a
//! host of a later one: the host's 0.2.1 interfaces answer their 0.2.0
//! imports and exports (wasmtime matches names semver-compatibly).

use duroxide_tests::{Harness, completed, guests, scenario};

scenario!(
    a_component_built_against_0_2_0_still_runs,
    |cache| async move {
        let h = Harness::start(cache, &[guests::CONTRACT_0_2_0]).await?;
        let output = completed(h.run("old", "Hello", "world").await?)?;
        assert_eq!(output, "hello world from 0.2.0");
        Ok(())
    }
);
