// Quickstart: create a project, add a scene, list the scenes, delete the project, read an error's reason.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"example.invalid/brain/client/go/brain"
	brainv1 "example.invalid/brain/client/go/gen/brain/v1"
)

func main() {
	ctx := context.Background()
	client, err := brain.New(cmp.Or(os.Getenv("BRAIN_ADDR"), "127.0.0.1:50051"), brain.WithAPIKey(os.Getenv("BRAIN_API_KEY")))
	check(err)
	defer client.Close()

	project, err := client.CreateProject(ctx, &brainv1.CreateProjectRequest{Name: "Launch video"})
	check(err)
	intro := &brainv1.UpsertSceneRequest{ProjectId: project.GetProjectId(), Name: "Intro", Summary: "Logo on dark blue"}
	_, err = client.UpsertScene(ctx, intro)
	check(err)
	scenes, err := client.ListScenes(ctx, &brainv1.ListScenesRequest{ProjectId: project.GetProjectId()})
	check(err)
	fmt.Printf("project %s has %d scene(s)\n", project.GetProjectId(), len(scenes.GetScenes()))

	deleted, err := client.DeleteProject(ctx, project.GetProjectId()) // the project and everything in it
	check(err)
	fmt.Printf("deleted %d scene(s), %d memory item(s)\n", deleted.GetScenes(), deleted.GetMemoryItems())
	var failure *brain.Error
	if _, err := client.GetProject(ctx, project.GetProjectId()); errors.As(err, &failure) {
		fmt.Println(brain.CodeName(failure.Code), failure.Reason) // NOT_FOUND PROJECT_NOT_FOUND
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
