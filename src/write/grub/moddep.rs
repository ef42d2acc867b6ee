//! The order of embedded modules, from `moddep.lst`.
//!
//! GRUB's kernel initialises embedded modules in the order they are stored,
//! and a module whose dependency is not yet loaded makes it look for the
//! dependency under the prefix, which is not set yet: the boot stops with
//! "variable `prefix' isn't set". So every module is stored after everything
//! it needs.

use std::collections::BTreeMap;

use super::GrubError;

pub(super) const MODDEP: &str = "moddep.lst";

/// `modules` and everything they depend on, each after its dependencies:
/// a depth-first walk of `moddep.lst` (lines `name: dependency …`) that
/// takes `modules` in the given order and each module's dependencies in the
/// reverse of their listing, as `grub-mkimage` does, so that the payload is
/// the same as `grub-mkimage`'s. A module missing from `moddep.lst` is taken
/// to have no dependencies.
pub(super) fn load_order<'a>(
    moddep: &'a str,
    modules: &[&'a str],
) -> Result<Vec<&'a str>, GrubError> {
    let dependencies = parse(moddep)?;
    let mut walk = Walk {
        dependencies: &dependencies,
        state: BTreeMap::new(),
        order: Vec::new(),
    };
    for module in modules {
        walk.visit(module)?;
    }
    Ok(walk.order)
}

fn parse(moddep: &str) -> Result<BTreeMap<&str, Vec<&str>>, GrubError> {
    let mut dependencies = BTreeMap::new();
    for (number, line) in moddep.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((module, needs)) = line.split_once(':') else {
            return Err(GrubError::malformed(
                MODDEP,
                format!("line {} has no `:`", number + 1),
            ));
        };
        dependencies.insert(module.trim(), needs.split_whitespace().collect());
    }
    Ok(dependencies)
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    /// Its dependencies are being walked: meeting it again is a cycle.
    Entered,
    /// It is in the order.
    Placed,
}

struct Walk<'l, 'a> {
    dependencies: &'l BTreeMap<&'a str, Vec<&'a str>>,
    state: BTreeMap<&'a str, State>,
    order: Vec<&'a str>,
}

/// A module being walked and its dependencies still to visit. The walk
/// keeps these on a stack of its own: `moddep.lst` comes from a boot image,
/// and a chain of dependencies as long as the file allows must not
/// overflow the thread's stack.
type Frame<'l, 'a> = (&'a str, std::iter::Rev<std::slice::Iter<'l, &'a str>>);

impl<'l, 'a> Walk<'l, 'a> {
    fn visit(&mut self, module: &'a str) -> Result<(), GrubError> {
        let mut stack = Vec::new();
        self.enter(module, &mut stack)?;
        while let Some((module, pending)) = stack.last_mut() {
            match pending.next() {
                Some(dependency) => self.enter(dependency, &mut stack)?,
                None => {
                    let module = *module;
                    stack.pop();
                    self.state.insert(module, State::Placed);
                    self.order.push(module);
                }
            }
        }
        Ok(())
    }

    /// Starts walking `module` unless it is placed; meeting it again while
    /// its dependencies are walked is a cycle.
    fn enter(&mut self, module: &'a str, stack: &mut Vec<Frame<'l, 'a>>) -> Result<(), GrubError> {
        match self.state.get(module) {
            Some(State::Placed) => return Ok(()),
            Some(State::Entered) => {
                return Err(GrubError::DependencyCycle {
                    module: module.to_owned(),
                });
            }
            None => {}
        }
        self.state.insert(module, State::Entered);
        let dependencies = self.dependencies.get(module).map_or(&[][..], Vec::as_slice);
        stack.push((module, dependencies.iter().rev()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_once_each() {
        let moddep = "normal: boot terminal\nlinux: boot video\nvideo:\nterminal:\nboot:\n";
        let order = load_order(moddep, &["normal", "linux"]).unwrap();
        assert_eq!(order, ["terminal", "boot", "normal", "video", "linux"]);
    }

    #[test]
    fn unlisted_module_has_no_dependencies() {
        assert_eq!(load_order("fat: fshelp\n", &["tar"]).unwrap(), ["tar"]);
    }

    #[test]
    fn cycle_is_an_error() {
        let error = load_order("a: b\nb: c\nc: a\n", &["a"]).unwrap_err();
        assert!(matches!(error, GrubError::DependencyCycle { module } if module == "a"));
    }

    #[test]
    fn a_long_dependency_chain_needs_no_deep_stack() {
        let depth = 200_000;
        let moddep: String = (0..depth).map(|i| format!("m{i}: m{}\n", i + 1)).collect();
        let order = load_order(&moddep, &["m0"]).unwrap();
        assert_eq!(order.len(), depth + 1);
        assert_eq!(order[0], format!("m{depth}"));
        assert_eq!(order[depth], "m0");
    }

    #[test]
    fn line_without_colon_is_an_error() {
        let error = load_order("fat fshelp\n", &["fat"]).unwrap_err();
        assert!(error.to_string().contains("moddep.lst"), "{error}");
        assert!(error.to_string().contains("line 1"), "{error}");
    }
}
