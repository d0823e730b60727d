//! The `depends_on` graph of a project's services: who waits for whom, and
//! the deterministic order (dependencies first, sorted names within a
//! level) that plans and their text follow.
use std::collections::{BTreeMap, BTreeSet};

use super::PlanError;
use crate::model::Project;

/// Services and their dependency edges. Built only when acyclic.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    dependencies: BTreeMap<String, BTreeSet<String>>,
    dependents: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// The graph of `project`'s services. Optional dependencies on services
    /// the project does not have are dropped (compose skips them); a
    /// required one is an error, and so is a cycle, named by its path. The
    /// loader refuses both already: this keeps the planner safe on a model
    /// built some other way.
    pub fn new(project: &Project) -> Result<Self, PlanError> {
        let mut graph = Graph::default();
        for name in project.services.keys() {
            graph.dependencies.insert(name.clone(), BTreeSet::new());
            graph.dependents.insert(name.clone(), BTreeSet::new());
        }
        for (name, service) in &project.services {
            for (dependency, config) in &service.depends_on {
                if !project.services.contains_key(dependency) {
                    if config.required {
                        return Err(PlanError::UnknownDependency {
                            service: name.clone(),
                            dependency: dependency.clone(),
                        });
                    }
                    continue;
                }
                if let Some(set) = graph.dependencies.get_mut(name) {
                    set.insert(dependency.clone());
                }
                if let Some(set) = graph.dependents.get_mut(dependency) {
                    set.insert(name.clone());
                }
            }
        }
        graph.check_acyclic()?;
        Ok(graph)
    }

    /// The services `service` depends on, sorted.
    pub fn dependencies<'a>(&'a self, service: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.dependencies
            .get(service)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// The services that depend on `service`, sorted.
    pub fn dependents<'a>(&'a self, service: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.dependents
            .get(service)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Services in levels: first those with no dependencies (the leaves),
    /// then those whose dependencies are all in earlier levels; sorted
    /// within a level.
    pub fn levels(&self) -> Vec<Vec<&str>> {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut levels = Vec::new();
        while done.len() < self.dependencies.len() {
            let level: Vec<&str> = self
                .dependencies
                .iter()
                .filter(|(name, _)| !done.contains(name.as_str()))
                .filter(|(_, deps)| deps.iter().all(|d| done.contains(d.as_str())))
                .map(|(name, _)| name.as_str())
                .collect();
            if level.is_empty() {
                // Unreachable for a graph built by `new`, which refuses cycles.
                break;
            }
            done.extend(level.iter().copied());
            levels.push(level);
        }
        levels
    }

    /// Every service, dependencies before their dependents.
    pub fn order(&self) -> Vec<&str> {
        self.levels().into_iter().flatten().collect()
    }

    /// Refuses a cycle, naming the services on it in order.
    fn check_acyclic(&self) -> Result<(), PlanError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        fn visit<'a>(
            graph: &'a Graph,
            name: &'a str,
            marks: &mut BTreeMap<&'a str, Mark>,
            path: &mut Vec<&'a str>,
        ) -> Result<(), PlanError> {
            match marks.get(name) {
                Some(Mark::Done) => return Ok(()),
                Some(Mark::Visiting) => {
                    let start = path.iter().position(|n| *n == name).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[start..].iter().map(|n| (*n).to_string()).collect();
                    cycle.push(name.to_string());
                    return Err(PlanError::DependencyCycle { path: cycle });
                }
                None => {}
            }
            marks.insert(name, Mark::Visiting);
            path.push(name);
            for dependency in graph.dependencies(name) {
                visit(graph, dependency, marks, path)?;
            }
            path.pop();
            marks.insert(name, Mark::Done);
            Ok(())
        }
        let mut marks = BTreeMap::new();
        for name in self.dependencies.keys() {
            visit(self, name, &mut marks, &mut Vec::new())?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{ServiceConfig, ServiceDependency};

    fn project(edges: &[(&str, &[&str])]) -> Project {
        let mut project = Project::default();
        for (name, deps) in edges {
            let mut service = ServiceConfig::default();
            for dep in *deps {
                service.depends_on.insert(
                    (*dep).to_string(),
                    ServiceDependency {
                        condition: "service_started".into(),
                        restart: false,
                        required: true,
                    },
                );
            }
            project.services.insert((*name).to_string(), service);
        }
        project
    }

    #[test]
    fn leaves_come_first_and_names_are_sorted_within_a_level() {
        let graph = Graph::new(&project(&[
            ("web", &["api"]),
            ("api", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
            ("admin", &["db"]),
        ]))
        .unwrap();
        assert_eq!(
            graph.levels(),
            vec![vec!["cache", "db"], vec!["admin", "api"], vec!["web"]]
        );
        assert_eq!(graph.order(), ["cache", "db", "admin", "api", "web"]);
        assert_eq!(graph.dependents("db").collect::<Vec<_>>(), ["admin", "api"]);
        assert_eq!(
            graph.dependencies("api").collect::<Vec<_>>(),
            ["cache", "db"]
        );
    }

    #[test]
    fn a_cycle_is_refused_with_its_path_named() {
        let err = Graph::new(&project(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle detected: a -> b -> c -> a"
        );
        assert_eq!(err.reason(), "dependency_cycle");
    }

    #[test]
    fn a_service_depending_on_itself_is_a_cycle() {
        let err = Graph::new(&project(&[("a", &["a"])])).unwrap_err();
        assert_eq!(
            err,
            PlanError::DependencyCycle {
                path: vec!["a".into(), "a".into()]
            }
        );
    }

    #[test]
    fn a_missing_required_dependency_is_refused_and_an_optional_one_dropped() {
        let mut p = project(&[("a", &["ghost"])]);
        assert!(matches!(
            Graph::new(&p),
            Err(PlanError::UnknownDependency { .. })
        ));
        if let Some(dep) = p
            .services
            .get_mut("a")
            .and_then(|s| s.depends_on.get_mut("ghost"))
        {
            dep.required = false;
        }
        let graph = Graph::new(&p).unwrap();
        assert_eq!(graph.dependencies("a").count(), 0);
    }
}
