// An ASP.NET Core app that embeds ws2s at /ws2s behind its own cookie sign-in, each user reaching
// only their own destinations. Run: dotnet run --project samples/Ws2s.Sample (samples/README.md: signing in, a session)
Ws2s.Sample.SampleApp.Build(args).Run();
